// swift-tools-version:6.2
import PackageDescription

/// One settings list for every Swift target (STYLE.md: Swift 6 mode, strict imports and existentials).
let swiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
    .enableUpcomingFeature("NonisolatedNonsendingByDefault"),
]

let package = Package(
    name: "MediaQueue",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "mediaqueue", targets: ["mediaqueue"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.1.1"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
    ],
    targets: [
        // C libraries from Debian, each imported by exactly one wrapper target.
        .systemLibrary(
            name: "CRabbitMQ",
            pkgConfig: "librabbitmq",
            providers: [.apt(["librabbitmq-dev", "libssl-dev"])]
        ),
        .systemLibrary(
            name: "CLibXML2",
            pkgConfig: "libxml-2.0",
            providers: [.apt(["libxml2-dev"])]
        ),
        .systemLibrary(
            name: "CCurl",
            pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]
        ),
        // SQLite's process-wide configuration (a variadic C call), wrapped for Swift; GRDB imports SQLite itself.
        .target(
            name: "CSQLiteTuning",
            linkerSettings: [.linkedLibrary("sqlite3")]
        ),
        // glibc's posix_spawn_file_actions_addclosefrom_np, which Swift's Glibc module hides.
        .target(name: "CSpawn"),

        // Wrappers.
        .target(
            name: "MediaQueueXML",
            dependencies: ["CLibXML2"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "MediaQueueAMQP",
            dependencies: ["CRabbitMQ", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "MediaQueueHTTPClient",
            dependencies: ["CCurl"],
            swiftSettings: swiftSettings
        ),

        // Pure model, CI codecs and the store protocol with its memory store.
        .target(
            name: "MediaQueueCore",
            dependencies: ["MediaQueueXML"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "MediaQueueSQLite",
            dependencies: [
                "MediaQueueCore", "MediaQueueXML", "CSQLiteTuning", .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
            ],
            swiftSettings: swiftSettings
        ),
        // The store for several nodes: PostgreSQL, over postgres-nio.
        .target(
            name: "MediaQueuePostgres",
            dependencies: [
                "MediaQueueCore", "MediaQueueXML",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "MediaQueueWorkers",
            dependencies: [
                "MediaQueueCore", "MediaQueueXML", "MediaQueueHTTPClient", "CSpawn", .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "MediaQueueEngine",
            dependencies: [
                "MediaQueueCore", "MediaQueueXML", "MediaQueueAMQP", "MediaQueueHTTPClient",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "MediaQueueAPI",
            dependencies: [
                "MediaQueueCore", "MediaQueueXML",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The web console: server-rendered pages on the API's router.
        .target(
            name: "MediaQueueConsole",
            dependencies: [
                "MediaQueueAPI", "MediaQueueCore", "MediaQueueXML",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Mustache", package: "swift-mustache"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "MediaQueueApp",
            dependencies: [
                "MediaQueueCore", "MediaQueueXML", "MediaQueueAMQP", "MediaQueueEngine", "MediaQueueWorkers", "MediaQueueSQLite",
                "MediaQueuePostgres", "MediaQueueAPI", "MediaQueueConsole", "MediaQueueHTTPClient",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "mediaqueue",
            dependencies: [
                "MediaQueueApp", "MediaQueueCore", "MediaQueueXML",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),

        // Benchmarks (not part of the product): `swift run -c release mediaqueue-dispatch-bench`.
        .executableTarget(
            name: "mediaqueue-dispatch-bench",
            dependencies: [
                "MediaQueueCore", "MediaQueueEngine", "MediaQueueSQLite", "MediaQueuePostgres", "MediaQueueWorkers", "MediaQueueXML",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/DispatchBenchmark",
            swiftSettings: swiftSettings
        ),
        // `swift run -c release mediaqueue-store-bench`: the store's CPU per job on the hot path.
        .executableTarget(
            name: "mediaqueue-store-bench",
            dependencies: ["MediaQueueCore", "MediaQueueSQLite", "MediaQueueWorkers"],
            path: "Benchmarks/StoreBenchmark",
            swiftSettings: swiftSettings
        ),
        // `Benchmarks/end-to-end.sh`: AMQP submission to confirmed event through `mediaqueue serve`.
        .executableTarget(
            name: "mediaqueue-e2e-bench",
            dependencies: ["MediaQueueAMQP", .product(name: "Logging", package: "swift-log")],
            path: "Benchmarks/EndToEnd",
            swiftSettings: swiftSettings
        ),

        // Fuzzing (scripts/fuzz.sh): each parser with its properties, and the libFuzzer harness
        // (built with -sanitize=fuzzer,address -DFUZZING; a plain build replays files).
        .target(
            name: "MediaQueueFuzzTargets",
            dependencies: ["MediaQueueCore", "MediaQueueXML"],
            swiftSettings: swiftSettings
        ),
        .target(name: "CLibFuzzer", path: "Fuzz/CLibFuzzer"),
        .executableTarget(
            name: "mediaqueue-fuzz",
            dependencies: ["MediaQueueFuzzTargets", "CLibFuzzer"],
            path: "Fuzz/Harness",
            swiftSettings: swiftSettings
        ),

        .target(
            name: "MediaQueueTestSupport",
            dependencies: ["MediaQueueCore", .product(name: "PostgresNIO", package: "postgres-nio"), .product(name: "Logging", package: "swift-log")],
            path: "Tests/MediaQueueTestSupport",
            swiftSettings: swiftSettings
        ),

        // Tests: unit tests per target, integration tests against the real broker, ffmpeg and SQLite.
        .testTarget(name: "MediaQueueXMLTests", dependencies: ["MediaQueueXML", "MediaQueueTestSupport"], swiftSettings: swiftSettings),
        .testTarget(
            name: "MediaQueueAPITests",
            dependencies: [
                "MediaQueueAPI", "MediaQueueCore", "MediaQueueXML", "MediaQueueTestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MediaQueueConsoleTests",
            dependencies: [
                "MediaQueueConsole", "MediaQueueAPI", "MediaQueueCore", "MediaQueueXML", "MediaQueueTestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "MediaQueueFuzzTargetsTests", dependencies: ["MediaQueueFuzzTargets"], swiftSettings: swiftSettings),
        .testTarget(name: "MediaQueueCoreTests", dependencies: ["MediaQueueCore", "MediaQueueXML", "MediaQueueTestSupport"], swiftSettings: swiftSettings),
        .testTarget(
            name: "MediaQueueAMQPTests",
            // CRabbitMQ: rabbitmq-c's own encoder is the reference the size checks are tested against.
            dependencies: ["MediaQueueAMQP", "CRabbitMQ", "MediaQueueTestSupport", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "MediaQueueHTTPClientTests", dependencies: ["MediaQueueHTTPClient", "MediaQueueTestSupport"], swiftSettings: swiftSettings),
        .testTarget(
            name: "MediaQueueEngineTests",
            dependencies: [
                "MediaQueueEngine", "MediaQueueAMQP", "MediaQueueCore", "MediaQueueHTTPClient", "MediaQueueSQLite", "MediaQueueXML",
                "MediaQueueTestSupport", .product(name: "Logging", package: "swift-log"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The store conformance suite (memory, SQLite, PostgreSQL) and each driver's own tests.
        .testTarget(
            name: "MediaQueueStoreTests",
            dependencies: [
                "MediaQueueSQLite", "MediaQueuePostgres", "MediaQueueCore", "MediaQueueXML", "MediaQueueTestSupport",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MediaQueueWorkersTests",
            dependencies: [
                "MediaQueueWorkers", "MediaQueueCore", "MediaQueueHTTPClient", "MediaQueueXML", "MediaQueueTestSupport",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MediaQueueIntegrationTests",
            dependencies: [
                "MediaQueueApp", "MediaQueueCore", "MediaQueueXML", "MediaQueueAMQP", "MediaQueueEngine", "MediaQueueSQLite",
                "MediaQueuePostgres", "MediaQueueWorkers", "MediaQueueHTTPClient", "MediaQueueTestSupport",
                .product(name: "Logging", package: "swift-log"), .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
