// swift-tools-version:6.0
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "TaskMesh",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "TaskMesh", targets: ["TaskMesh"]),
        .library(name: "ZMQ", targets: ["ZMQ"]),
        .executable(name: "taskmesh", targets: ["taskmesh"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.1.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.6.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.0.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.0.0"),
    ],
    targets: [
        // libzmq from Debian's libzmq3-dev: zmq.h is on the default include path and the module
        // map links -lzmq. No pkgConfig: libzmq.pc drags in krb5's -isystem flags, which SwiftPM
        // rejects with a warning on every build (docs/ARCHITECTURE.md, "Build").
        .systemLibrary(name: "CZMQ"),
        .target(name: "ZMQ", dependencies: ["CZMQ"], swiftSettings: strict),
        .target(
            name: "TaskMesh",
            dependencies: [
                "ZMQ",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "HeapModule", package: "swift-collections"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "taskmesh",
            dependencies: [
                "TaskMesh",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        // Examples/: a user's own worker and client executables around a typed `add` job.
        .target(name: "AddTypes", path: "Examples/AddTypes", swiftSettings: strict),
        .executableTarget(
            name: "example-add-worker",
            dependencies: [
                "AddTypes", "TaskMesh",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Examples/AddWorker", swiftSettings: strict
        ),
        .executableTarget(name: "example-add-client", dependencies: ["AddTypes", "TaskMesh"], path: "Examples/AddClient", swiftSettings: strict),
        .testTarget(name: "ZMQTests", dependencies: ["ZMQ"], swiftSettings: strict),
        .testTarget(
            name: "TaskMeshTests",
            dependencies: [
                "TaskMesh", "ZMQ", "taskmesh", "example-add-worker", "example-add-client",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),
    ]
)
