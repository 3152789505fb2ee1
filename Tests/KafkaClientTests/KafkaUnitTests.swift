import KafkaClient
import Testing

@Suite("Kafka adapter, no broker")
struct KafkaUnitTests {
    @Test("murmur2 matches Kafka's Java reference vectors")
    func murmur2Vectors() {
        // From Apache Kafka's UtilsTest.testMurmur2.
        let cases: [([UInt8], Int32)] = [
            (Array("21".utf8), -973_932_308),
            (Array("foobar".utf8), -790_332_482),
            (Array("a-little-bit-long-string".utf8), -985_981_536),
            (Array("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8".utf8), -58_897_971),
            ([UInt8(ascii: "a"), UInt8(ascii: "b"), UInt8(ascii: "c")], 479_470_107),
        ]
        for (bytes, expected) in cases {
            #expect(Int32(bitPattern: KafkaPartitioner.murmur2(bytes)) == expected, "\(bytes)")
        }
    }

    @Test("a rejected property is named in the error")
    func badProperty() {
        #expect {
            _ = try KafkaProducer(configuration: KafkaConfiguration(["no.such.property": "1"]))
        } throws: { e in "\(e)".contains("no.such.property") }
        #expect {
            _ = try KafkaProducer(configuration: KafkaConfiguration(["linger.ms": "banana"]))
        } throws: { e in "\(e)".contains("linger.ms") }
    }

    @Test("an unknown property's error names the environment variable it may come from; secret values are not echoed")
    func unknownPropertyNamesItsSources() {
        #expect {
            _ = try KafkaProducer(configuration: KafkaConfiguration(["port": "29092"]))
        } throws: { e in "\(e)".contains("FEEDRANK_KAFKA_PORT") && "\(e)".contains("--kafka") }
        #expect {
            _ = try KafkaProducer(configuration: KafkaConfiguration(["no.such.password": "hunter2"]))
        } throws: { e in "\(e)".contains("no.such.password") && !"\(e)".contains("hunter2") }
        #expect(KafkaConfiguration.environmentName(of: "sasl.mechanism") == "FEEDRANK_KAFKA_SASL_MECHANISM")
    }

    @Test("KEY=VALUE pairs, properties files and the environment parse into properties")
    func configurationSources() throws {
        #expect(try KafkaConfiguration.parsePairs(["security.protocol=SASL_SSL", " sasl.mechanism = PLAIN "])
                == ["security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN"])
        #expect(throws: KafkaError.self) { try KafkaConfiguration.parsePairs(["novalue"]) }
        let env = KafkaConfiguration.fromEnvironment(["FEEDRANK_KAFKA_SASL_USERNAME": "u", "OTHER": "x"])
        #expect(env == ["sasl.username": "u"])
        let path = NSTemporaryDirectoryPath() + "/kafka-\(UInt32.random(in: 0...UInt32.max)).properties"
        try "# comment\nssl.ca.location=/etc/ca.pem\n\n! also comment\nclient.id = feedrank\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try KafkaConfiguration.parsePropertiesFile(path) == ["ssl.ca.location": "/etc/ca.pem", "client.id": "feedrank"])
        try "oops\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect { try KafkaConfiguration.parsePropertiesFile(path) } throws: { "\($0)".contains(":1") }
    }
}

import Foundation
func NSTemporaryDirectoryPath() -> String { NSTemporaryDirectory() }
