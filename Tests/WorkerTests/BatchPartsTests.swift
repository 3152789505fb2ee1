import Foundation
import KafkaClient
import Logging
import Ranking
import RankingModel
import TestSupport
import Testing
import VectorIndex
@testable import Worker

/// The pure parts of replay and batch: checkpoint bookkeeping, model-version evidence, the
/// changelog restore rule, batch ranking against single ranking, and the L1 entry check.
struct BatchPartsTests {
    // MARK: checkpoint

    @Test func checkpointMovesOnlyOverContiguousFinishedBatches() {
        var c = BatchCompletion()
        #expect(c.finish(1) == nil, "batch 0 is still running")
        #expect(c.finish(2) == nil)
        #expect(c.finish(0) == 3, "0, 1, 2 are done")
        #expect(c.finish(4) == nil)
        #expect(c.finish(3) == 5)
        #expect(c.nextUnfinished == 5)
    }

    @Test func checkpointFileRoundTripsAndIsReplacedAtomically() throws {
        let dir = ScratchDirectory("checkpoint")
        let store = CheckpointStore.file(dir.path + "/batch.json")
        #expect(try store.load() == nil, "no file yet")
        var cp = BatchCheckpoint(runId: "r1", startedAt: 1_000, at: 2_000, modelVersion: "m1", activeDays: 30, totalUsers: 10)
        cp.lastUserId = 42
        cp.doneUsers = 4
        try store.save(cp)
        #expect(try store.load() == cp)
        cp.doneUsers = 8
        try store.save(cp)
        #expect(try store.load()?.doneUsers == 8)
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/batch.json.tmp"))
        let text = String(decoding: cp.jsonBytes(), as: UTF8.self)
        #expect(text.contains("\"last_user_id\":42") && text.contains("\"model_version\":\"m1\""))
    }

    @Test func unreadableCheckpointNamesTheFile() throws {
        let dir = ScratchDirectory("checkpoint")
        let path = dir.path + "/bad.json"
        try Data("{not json".utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: WorkerError.self) { try CheckpointStore.file(path).load() }
        do { _ = try CheckpointStore.file(path).load() } catch let e as WorkerError { #expect(e.message.contains(path)) }
    }

    @Test func onlyAnUnfinishedRecentRunOfTheSameModelAndWindowIsResumed() {
        let cp = BatchCheckpoint(runId: "r", startedAt: 1_000_000, at: 1_000_000, modelVersion: "m1", activeDays: 30, totalUsers: 5)
        #expect(cp.resumable(modelVersion: "m1", activeDays: 30, now: 1_000_000 + 3_600_000))
        #expect(!cp.resumable(modelVersion: "m2", activeDays: 30, now: 1_000_000), "another model")
        #expect(!cp.resumable(modelVersion: "m1", activeDays: 7, now: 1_000_000), "another window")
        #expect(!cp.resumable(modelVersion: "m1", activeDays: 30, now: 1_000_000 + 25 * 3_600_000), "older than a day")
        var done = cp
        done.completed = true
        #expect(!done.resumable(modelVersion: "m1", activeDays: 30, now: 1_000_000), "finished")
    }

    @Test func partitionPointFindsTheFirstUserAfterTheCheckpoint() {
        let ids: [Int64] = [3, 5, 9, 12]
        #expect(ids.partitionPoint { $0 > 5 } == 2)
        #expect(ids.partitionPoint { $0 > 0 } == 0)
        #expect(ids.partitionPoint { $0 > 12 } == 4)
    }

    // MARK: model version evidence

    @Test func modelVersionOfAnL1EntryIsReadWithoutParsingItems() {
        let r = RankingResponse(requestId: nil, userId: 7, trigger: .activity, items: [RankedItem(itemId: 1, score: 0.5, rank: 1, promoted: false)],
                                latencyMs: 1, modelVersion: "demo-2", coldStart: false, generatedAt: 5)
        #expect(ModelVersionCheck.l1ModelVersion(r.jsonBytes()) == "demo-2")
        #expect(ModelVersionCheck.l1ModelVersion(Array("{\"status\":\"ok\"}".utf8)) == nil)
    }

    @Test func mismatchedEvidenceRefusesUnlessAllowed() throws {
        var check = ModelVersionCheck()
        check.stateHeaders = ["m1": 10]
        check.statesWithoutHeader = 3
        #expect(throws: Never.self) { try check.enforce(bundleVersion: "m1", allowMismatch: false, what: "replaying") }
        check.l1 = ["m0": 2]
        #expect(check.mismatches("m1") == ["m0"])
        #expect(throws: ModelMismatchError.self) { try check.enforce(bundleVersion: "m1", allowMismatch: false, what: "replaying") }
        #expect(throws: Never.self) { try check.enforce(bundleVersion: "m1", allowMismatch: true, what: "replaying") }
        #expect(throws: Never.self) { try ModelVersionCheck().enforce(bundleVersion: "m1", allowMismatch: false, what: "x") }
    }

    // MARK: the changelog restore rule

    @Test func snapshotKeepsTheStateWithTheFurthestSourceOffsetAndHonoursTombstones() throws {
        let (bundle, _dir) = try SyntheticBundle().load()
        _ = _dir
        let m = bundle.manifest
        func record(_ s: UserState?, user: Int64, offset: Int64, version: String? = "m1") -> KafkaRecord {
            KafkaRecord(topic: "state", partition: 1, offset: offset, key: Array(String(user).utf8), value: s?.jsonBytes() ?? [],
                        headers: version.map { [KafkaHeader(key: ModelVersionCheck.header, string: $0)] } ?? [])
        }
        var newer = UserState(userId: 5, firstEventAt: 100, manifest: m)
        newer.source = SourcePosition(partition: 1, offset: 90)
        var older = newer
        older.source = SourcePosition(partition: 1, offset: 40)
        older.tLast = 50
        var snap = StateSnapshot()
        let logger = Logger(label: "test")
        snap.absorb(record(newer, user: 5, offset: 0), partition: 1, manifest: m, logger: logger)
        snap.absorb(record(older, user: 5, offset: 1, version: nil), partition: 1, manifest: m, logger: logger)
        #expect(snap.entry(1, 5)?.state == newer, "a late older state does not replace a newer one")
        #expect(snap.modelVersions == ["m1": 1])
        snap.absorb(record(nil, user: 5, offset: 2), partition: 1, manifest: m, logger: logger)
        #expect(snap.entry(1, 5) == nil, "a tombstone removes the user")
        snap.absorb(KafkaRecord(topic: "state", partition: 1, offset: 3, key: nil, value: Array("{}".utf8)), partition: 1, manifest: m, logger: logger)
        #expect(snap.unreadable == 1 && snap.records == 4)
    }
}
