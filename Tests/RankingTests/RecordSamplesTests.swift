import Foundation
import Ranking
import RankingModel
import Testing

/// The Swift half of the schema/code agreement check: the worker's parsers must accept every
/// sample in topics/samples/valid and reject every one in topics/samples/invalid, exactly as the
/// JSON Schemas in topics/schemas do (tools/tests/test_schemas.py checks the schema half).
/// Output records (ranking-response, error-response, user-state) must also be written back
/// byte-for-byte as in their valid samples, so what the worker writes is what the schema states.
struct RecordSamplesTests {
    enum Kind: String { case valid, invalid }

    /// `<record-type>.<case>` of every sample of a kind.
    static func sampleNames(_ kind: Kind) -> [String] {
        let dir = samplesDirectory.appendingPathComponent(kind.rawValue)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return names.filter { $0.hasSuffix(".json") }.map { String($0.dropLast(5)) }.sorted()
    }

    static let samplesDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("topics/samples")

    static func bytes(_ kind: Kind, _ name: String) throws -> [UInt8] {
        let url = samplesDirectory.appendingPathComponent(kind.rawValue).appendingPathComponent(name + ".json")
        return Array(try Data(contentsOf: url))
    }

    /// The sample without its final newline: how the writer's bytes look.
    static func trimmed(_ b: [UInt8]) -> [UInt8] {
        var b = b
        while let last = b.last, last == 0x0a || last == 0x0d { b.removeLast() }
        return b
    }

    /// Invalid samples that the readers of worker output accept on purpose (with the reason).
    static func readerLenient() throws -> Set<String> {
        let data = try Data(contentsOf: samplesDirectory.appendingPathComponent("reader-lenient.json"))
        let doc = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let map = try #require(doc["accepted_by_reader"] as? [String: String])
        return Set(map.keys)
    }

    static func recordType(_ name: String) -> String { String(name.prefix { $0 != "." }) }

    /// Whether FeedRank's parser for the record type accepts the bytes, with its error message;
    /// nil for a type the worker only writes (error-response).
    static func parse(_ type: String, _ bytes: [UInt8]) -> (accepted: Bool, error: String)? {
        switch type {
        case "user-activity":
            do { _ = try ActivityEvent.parse(bytes); return (true, "") } catch { return (false, error.message) }
        case "ranking-request":
            do { _ = try RankingRequest.parse(bytes); return (true, "") } catch { return (false, error.message) }
        case "ranking-response":
            do { _ = try RankingResponse.parse(bytes); return (true, "") } catch { return (false, "\(error)") }
        case "user-state":
            do { _ = try UserState.decode(bytes); return (true, "") } catch { return (false, error.message) }
        default:
            return nil
        }
    }

    @Test func samplesExistForEveryRecordType() {
        let types: Set = ["user-activity", "ranking-request", "ranking-response", "error-response", "user-state"]
        #expect(Set(Self.sampleNames(.valid).map(Self.recordType)) == types)
        #expect(Set(Self.sampleNames(.invalid).map(Self.recordType)) == types)
    }

    @Test("every valid sample is accepted by the worker's parser", arguments: sampleNames(.valid))
    func validSampleIsAccepted(_ name: String) throws {
        let result = Self.parse(Self.recordType(name), try Self.bytes(.valid, name))
        guard let result else { return }  // error-response: checked by validOutputSampleIsWhatTheWorkerWrites
        #expect(result.accepted, "\(name): \(result.error)")
    }

    @Test("every invalid sample is rejected, except the documented lenient readings", arguments: sampleNames(.invalid))
    func invalidSampleIsRejected(_ name: String) throws {
        let type = Self.recordType(name)
        let result = Self.parse(type, try Self.bytes(.invalid, name))
        guard let result else { return }  // no reader: the worker only writes error responses
        if try Self.readerLenient().contains(name) {
            #expect(result.accepted, "\(name) is listed in reader-lenient.json but the reader now rejects it: remove it from the list")
        } else {
            #expect(!result.accepted, "\(name) is invalid per the schema but the parser accepts it")
            #expect(result.error.contains("record") || result.error.contains("state") || result.error.contains("response"),
                    "\(name): the error should name the record: \(result.error)")
        }
    }

    @Test("invalid input records get an error naming the field at fault",
          arguments: sampleNames(.invalid).filter { recordType($0) == "user-activity" || recordType($0) == "ranking-request" })
    func inputErrorsNameTheField(_ name: String) throws {
        let result = try #require(Self.parse(Self.recordType(name), try Self.bytes(.invalid, name)))
        #expect(!result.accepted)
        // Either a named field or a syntax problem with its byte offset.
        #expect(result.error.contains("field '") || result.error.contains("invalid JSON at byte")
                || result.error.contains("expected an object"), "\(name): \(result.error)")
    }

    @Test("valid output samples are byte-for-byte what the worker writes",
          arguments: sampleNames(.valid).filter { ["ranking-response", "error-response", "user-state"].contains(recordType($0)) })
    func validOutputSampleIsWhatTheWorkerWrites(_ name: String) throws {
        let bytes = try Self.bytes(.valid, name)
        let written: [UInt8]
        switch Self.recordType(name) {
        case "ranking-response":
            written = try RankingResponse.parse(bytes).jsonBytes()
        case "user-state":
            written = try UserState.decode(bytes).jsonBytes()
        default:
            let doc = try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
            let requestId = try #require(doc["request_id"] as? String)
            let error = try #require(doc["error"] as? String)
            let userId = (doc["user_id"] as? NSNumber).map { $0.int64Value }
            written = RankingErrorResponse(requestId: requestId, userId: userId, error: error).jsonBytes()
        }
        #expect(written == Self.trimmed(bytes),
                "\(name): the worker writes \(String(decoding: written, as: UTF8.self))")
    }

    @Test("valid input samples survive the writer and parser round trip", arguments: sampleNames(.valid).filter {
        recordType($0) == "user-activity" || recordType($0) == "ranking-request" })
    func validInputRoundTrips(_ name: String) throws {
        let bytes = try Self.bytes(.valid, name)
        if Self.recordType(name) == "user-activity" {
            let event = try ActivityEvent.parse(bytes)
            #expect(try ActivityEvent.parse(event.jsonBytes()) == event)
        } else {
            let request = try RankingRequest.parse(bytes)
            #expect(try RankingRequest.parse(request.jsonBytes()) == request)
        }
    }
}
