@testable import FeedRankCLI
import Ranking
import Testing

@Suite("Retrieval flags")
struct RetrievalFlagsTests {
    @Test("--nprobe and --probe-margin come from the flag, else FEEDRANK_*; bad values fail naming the flag")
    func probeFlags() throws {
        let none = try ConfigSources(configFile: nil, environment: [:])
        let defaults = try none.retrieval(nprobe: nil, probeMargin: nil)
        #expect(defaults.nprobe == RetrievalSettings().nprobe && defaults.probeMargin == 0.025)
        #expect(try none.retrieval(nprobe: 6, probeMargin: .infinity).probeMargin == .infinity)
        let env = try ConfigSources(configFile: nil, environment: ["FEEDRANK_PROBE_MARGIN": "inf", "FEEDRANK_NPROBE": "5"])
        let fromEnv = try env.retrieval(nprobe: nil, probeMargin: nil)
        #expect(fromEnv.nprobe == 5 && fromEnv.probeMargin == .infinity)
        #expect(try env.retrieval(nprobe: nil, probeMargin: 0.01).probeMargin == 0.01)
        #expect(throws: CLIError.self) { try none.retrieval(nprobe: nil, probeMargin: -0.1) }
        #expect(throws: CLIError.self) { try none.retrieval(nprobe: nil, probeMargin: .nan) }
        #expect(throws: CLIError.self) { try none.retrieval(nprobe: 0, probeMargin: nil) }
        let bad = try ConfigSources(configFile: nil, environment: ["FEEDRANK_PROBE_MARGIN": "wide"])
        do {
            _ = try bad.retrieval(nprobe: nil, probeMargin: nil)
            Issue.record("a non-number was accepted")
        } catch let error as CLIError {
            #expect("\(error)".contains("FEEDRANK_PROBE_MARGIN") && "\(error)".contains("not a number"))
        }
    }

    @Test("--axis-slack comes from the flag, else FEEDRANK_AXIS_SLACK, else 3.5; negative, NaN and non-numbers fail naming it")
    func axisSlackFlag() throws {
        let none = try ConfigSources(configFile: nil, environment: [:])
        #expect(try none.retrieval(nprobe: nil, probeMargin: nil).axisSlack == 3.5)
        #expect(try none.retrieval(nprobe: nil, probeMargin: nil, axisSlack: .infinity).axisSlack == .infinity)
        let env = try ConfigSources(configFile: nil, environment: ["FEEDRANK_AXIS_SLACK": "3"])
        #expect(try env.retrieval(nprobe: nil, probeMargin: nil).axisSlack == 3)
        #expect(try env.retrieval(nprobe: nil, probeMargin: nil, axisSlack: 4).axisSlack == 4)
        for bad in [-1.0, .nan] {
            do {
                _ = try none.retrieval(nprobe: nil, probeMargin: nil, axisSlack: bad)
                Issue.record("--axis-slack \(bad) was accepted")
            } catch let error as CLIError {
                #expect("\(error)".contains("--axis-slack"))
            }
        }
        let word = try ConfigSources(configFile: nil, environment: ["FEEDRANK_AXIS_SLACK": "wide"])
        #expect(throws: CLIError.self) { try word.retrieval(nprobe: nil, probeMargin: nil) }
    }
}
