import Foundation
import LinearAlgebra
import Logging
import Ranking
import RankingModel
import VectorIndex

/// Loads a bundle and its index the same way for every command: bad bundles and mismatched
/// index files are configuration errors (exit 2) naming the file.
enum CatalogLoader {
    static func loadBundle(_ path: String, logger: Logger) throws -> ModelBundle {
        let bundle: ModelBundle
        do { bundle = try ModelBundle.load(directory: path) } catch {
            throw CLIError.usage("--bundle \(path): \(error.message)")
        }
        for w in bundle.warnings { logger.warning("bundle \(path): \(w)") }
        return bundle
    }

    /// The index from `indexPath`, or built now (nil for catalogues too small to need one).
    static func loadIndex(_ indexPath: String?, bundle: ModelBundle, logger: Logger) throws -> IVFPQIndex? {
        if let indexPath {
            do {
                return try IVFPQIndex.load(from: indexPath, expectedDimension: bundle.embeddingDimension)
            } catch {
                throw CLIError.usage("--index \(indexPath): \(error.message)")
            }
        }
        let started = ContinuousClock.now
        var lastLog = ContinuousClock.now
        do {
            let index = try RankingIndexBuilder.buildIfUseful(bundle: bundle) { phase, done, total in
                if ContinuousClock.now - lastLog > .seconds(2) {
                    lastLog = .now
                    logger.info("building the index", metadata: ["phase": "\(phase)", "done": "\(done)", "total": "\(total)"])
                }
            }
            if let index {
                logger.info("index built", metadata: ["nlist": "\(index.nlist)", "items": "\(index.count)",
                                                      "seconds": "\((ContinuousClock.now - started).components.seconds)"])
            }
            return index
        } catch {
            throw CLIError.runtime("building the index for \(bundle.directory): \(error.message)")
        }
    }

    static func catalog(bundle: ModelBundle, index: IVFPQIndex?, retrieval: RetrievalSettings = RetrievalSettings()) throws -> RankingCatalog {
        do { return try RankingCatalog(bundle: bundle, index: index, retrieval: retrieval) } catch {
            throw CLIError.usage("\(error.message)")
        }
    }
}
