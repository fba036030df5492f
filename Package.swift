// swift-tools-version: 6.2
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "control-tower",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "tower", targets: ["tower"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", exact: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", exact: "1.16.2"),
        .package(url: "https://github.com/vapor/postgres-nio.git", exact: "1.33.2"),
        .package(url: "https://github.com/vapor/sqlite-nio.git", exact: "1.13.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", exact: "4.5.2"),
        // Without the default trait ConfigurationSupport: nothing here reads swift-configuration, and
        // it cost a cold build its 47 files and their dependencies.
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", exact: "2.28.1", traits: ["FullFoundation"]),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", exact: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", exact: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", exact: "2.4.1"),
        .package(url: "https://github.com/modelcontextprotocol/swift-sdk.git", exact: "0.12.1"),
    ],
    targets: [
        // Ordered JSON values, a strict parser and a deterministic serializer.
        .target(name: "TowerJSON", swiftSettings: strict),
        // Child processes: posix_spawn with a clean signal mask and no inherited descriptors.
        .target(name: "CSpawn"),
        .target(name: "Spawn", dependencies: ["CSpawn"], swiftSettings: strict),
        // The Swift runtime's global-executor hook, reached by the linker (Storage's `EventLoops`).
        .target(name: "CExecutorHook"),
        // Threads' CPU affinity (Storage's `CPUSet`, `TOWER_SQLITE_WRITER_CPU`).
        .target(name: "CPlacement"),
        // The Canonical Work Object Model: objects, validation, ULIDs, JSON Schema export.
        .target(name: "CWOM", dependencies: ["TowerJSON"], swiftSettings: strict),
        // The legacy V1 task contract: the task row and its JSON representation.
        .target(name: "LegacyTasks", dependencies: ["CWOM", "TowerJSON"], swiftSettings: strict),
        // Task ⇄ CWOM mapping (task_to_issue / issue_to_task).
        .target(name: "Bridge", dependencies: ["CWOM", "LegacyTasks", "TowerJSON"], swiftSettings: strict),
        // Migrations, drivers (PostgreSQL, SQLite), repositories, audit log.
        .target(
            name: "Storage",
            dependencies: [
                "CWOM", "LegacyTasks", "Bridge", "TowerJSON", "CExecutorHook", "CPlacement",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),
        // The bridge worker: claim, adapt, pin, execute, collect artifacts and traces, rescue.
        .target(
            name: "Worker",
            dependencies: [
                "CWOM", "LegacyTasks", "Bridge", "Spawn", "Storage", "TowerJSON",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: strict
        ),
        // HTTP: the legacy /tasks shim, /cwom/*, health.
        .target(
            name: "API",
            dependencies: [
                "CWOM", "LegacyTasks", "Bridge", "Storage", "TowerJSON", "Worker",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "MCP", package: "swift-sdk"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "tower",
            dependencies: [
                "API", "CWOM", "LegacyTasks", "Spawn", "Storage", "TowerJSON", "Worker",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "MCP", package: "swift-sdk"),
            ],
            swiftSettings: strict
        ),
        // Test helpers: a database of its own per test, on SQLite or the PostgreSQL of scripts/test.
        .target(
            name: "TowerTestSupport",
            dependencies: ["Storage", "CWOM", "TowerJSON", "Spawn", "CSpawn", .product(name: "Logging", package: "swift-log")], path: "Tests/Support",
            swiftSettings: strict),
        .testTarget(
            name: "APITests",
            dependencies: [
                "API", "Bridge", "CWOM", "LegacyTasks", "Storage", "TowerJSON", "TowerTestSupport",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        .testTarget(
            name: "WorkerTests",
            dependencies: [
                "API", "Worker", "CWOM", "LegacyTasks", "Spawn", "Storage", "TowerJSON", "TowerTestSupport",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        .testTarget(
            name: "LifecycleTests", dependencies: ["Bridge", "Storage", "CWOM", "LegacyTasks", "TowerJSON", "TowerTestSupport"],
            swiftSettings: strict),
        .testTarget(name: "DeployTests", dependencies: ["TowerTestSupport"], swiftSettings: strict),
        .testTarget(name: "CommandLineTests", dependencies: ["Spawn", "Storage", "TowerJSON", "TowerTestSupport"], swiftSettings: strict),
        .testTarget(name: "BridgeTests", dependencies: ["Bridge", "CWOM", "LegacyTasks", "TowerJSON"], swiftSettings: strict),
        .testTarget(name: "CWOMTests", dependencies: ["CWOM", "Spawn", "TowerJSON"], swiftSettings: strict),
        .testTarget(
            name: "StorageTests", dependencies: ["Storage", "CWOM", "LegacyTasks", "TowerJSON", "TowerTestSupport"], exclude: ["Fixtures"],
            swiftSettings: strict),
    ],
    swiftLanguageModes: [.v6]
)
