// swift-tools-version: 6.1
import PackageDescription
import Foundation

/// The package root, for the project-local librdkafka that scripts/install.sh builds.
let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().path

// librdkafka comes from scripts/install.sh (built from Debian trixie's source into
// .deps/librdkafka and linked statically, see Sources/CRdKafka/module.modulemap);
// hiredis and OpenBLAS are Debian's, found through pkg-config.
let package = Package(
    name: "FeedRank",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "feedrank", targets: ["feedrank"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
    ],
    targets: [
        // System libraries: a module map and a one-line shim header each.
        .systemLibrary(name: "CRdKafka"),
        .systemLibrary(name: "CHiredis", pkgConfig: "hiredis"),
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas"),
        // Header-only: a prefetch hint (`__builtin_prefetch`) for the ranking.
        .systemLibrary(name: "CPrefetch"),

        // Adapters: the only importers of their C library.
        .target(name: "KafkaClient", dependencies: [
            "CRdKafka",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "DequeModule", package: "swift-collections"),
        ], linkerSettings: [.unsafeFlags(["-L\(root)/.deps/librdkafka/static"])]),
        .target(name: "RedisClient", dependencies: [
            "CHiredis",
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "LinearAlgebra", dependencies: ["COpenBLAS"]),

        // Pure logic: no Kafka, Redis or HTTP.
        // -target-cpu haswell (AVX2/FMA): the 4-bit fast-scan kernel needs SSSE3's pshufb, which
        // baseline x86-64 lacks; without it the scan falls back to scalar code (~20x slower).
        // The binary therefore needs an AVX2 host.
        .target(name: "VectorIndex", dependencies: ["LinearAlgebra", "CPrefetch"],
                swiftSettings: [.unsafeFlags(["-Ounchecked"], .when(configuration: .release)),
                                .unsafeFlags(["-target-cpu", "haswell"])]),
        .target(name: "RankingModel", dependencies: ["LinearAlgebra"]),
        // Haswell here too (the binary needs AVX2 anyway): the exact scores' float64 dot
        // (`VectorMath.dotRounded`, inlined here) ran on SSE2, two doubles per instruction.
        // Swift does not contract a * b + c into an FMA, so results are the same bits.
        .target(name: "Ranking", dependencies: ["RankingModel", "VectorIndex", "LinearAlgebra", "CPrefetch"],
                swiftSettings: [.unsafeFlags(["-target-cpu", "haswell"])]),

        // Wiring.
        .target(name: "Worker", dependencies: [
            "KafkaClient", "RedisClient", "Ranking", "RankingModel", "VectorIndex",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "OrderedCollections", package: "swift-collections"),
        ]),
        .target(name: "HealthServer", dependencies: [
            "Worker", "Ranking",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
        ]),
        // The command line, as a library so tests drive it without a process.
        .target(name: "FeedRankCLI", dependencies: [
            "KafkaClient", "RedisClient", "LinearAlgebra", "VectorIndex", "RankingModel",
            "Ranking", "Worker", "HealthServer",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        // jemalloc instead of glibc's malloc for the executables: the worker allocates per record
        // on several threads (Swift values, librdkafka's messages, freed on another thread), where
        // glibc's arenas cost ~8 % of a flood's CPU (BENCHMARKS.md, issue 6).
        .executableTarget(name: "feedrank", dependencies: ["FeedRankCLI"],
                          linkerSettings: [.linkedLibrary("jemalloc")]),
        .executableTarget(name: "feedrank-bench", dependencies: [
            "FeedRankCLI", "KafkaClient", "RedisClient", "LinearAlgebra", "VectorIndex",
            "RankingModel", "Ranking", "Worker",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ], path: "Benchmarks/feedrank-bench", linkerSettings: [.linkedLibrary("jemalloc")]),

        // Fixtures shared by test targets (synthetic bundles, seeded randomness).
        .target(name: "TestSupport", dependencies: ["RankingModel", "Ranking", "VectorIndex"], path: "Tests/TestSupport"),
        .testTarget(name: "KafkaClientTests", dependencies: ["KafkaClient"]),
        .testTarget(name: "RedisClientTests", dependencies: ["RedisClient"]),
        .testTarget(name: "LinearAlgebraTests", dependencies: ["LinearAlgebra"]),
        .testTarget(name: "VectorIndexTests", dependencies: ["VectorIndex", "LinearAlgebra"]),
        .testTarget(name: "RankingModelTests", dependencies: ["RankingModel", "LinearAlgebra"]),
        .testTarget(name: "RankingTests", dependencies: ["Ranking", "RankingModel", "VectorIndex", "TestSupport"]),
        .testTarget(name: "WorkerTests", dependencies: ["Worker", "KafkaClient", "TestSupport"]),
        .testTarget(name: "IntegrationTests", dependencies: [
            "FeedRankCLI", "Worker", "KafkaClient", "RedisClient", "Ranking", "RankingModel", "TestSupport",
        ]),
    ],
    swiftLanguageModes: [.v6]
)
