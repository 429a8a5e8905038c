// swift-tools-version:6.0
// The benchmark suite's own package: it depends on TaskMesh by path, so the library never pulls
// in benchmark dependencies. Build with `bash scripts/bench.sh` (see docs/BENCHMARKS.md).
import PackageDescription

let package = Package(
    name: "TaskMeshBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "TaskMesh", path: "../"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.0.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
    ],
    targets: [
        // The TaskMesh client of the benchmarks (local and direct mode), one JSON line per run.
        .executableTarget(
            name: "tmbench",
            dependencies: [
                .product(name: "TaskMesh", package: "TaskMesh"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
    ]
)
