// swift-tools-version:6.0
// Fuzz targets for the TaskMesh codec, one per decoder a socket feeds with bytes from the network.
// Its own package (it depends on TaskMesh by path), built with libFuzzer by `bash scripts/fuzz.sh`
// (see docs/RELIABILITY.md, "Fuzzing the codec").
import PackageDescription

let fuzzTargets = ["FuzzJobIntake", "FuzzSinkFromWorker", "FuzzClientFromSink", "FuzzBrokerFromWorker", "FuzzFromBroker"]

let package = Package(
    name: "TaskMeshFuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "TaskMesh", path: "../"),
    ],
    targets: [
        .target(name: "CFuzzer"),
        .target(name: "FuzzSupport", dependencies: ["CFuzzer"]),
    ] + fuzzTargets.map { name in
        .executableTarget(name: name, dependencies: ["FuzzSupport", .product(name: "TaskMesh", package: "TaskMesh")])
    }
)
