import ArgumentParser
import CairnServer
import Foundation
import Testing

@testable import CairnCLI

@Suite("cairn serve options")
struct ServeCommandTests {
    @Test func defaultsMatchTheDocumentation() throws {
        let command = try #require(try CairnCommand.parseAsRoot(["serve"]) as? ServeCommand)
        let configuration = try command.resolvedConfiguration(environment: [:])
        #expect(configuration.host == "127.0.0.1")
        #expect(configuration.port == 8080)
        #expect(configuration.dataDirectory.lastPathComponent == "cairn-data")
        #expect(configuration.registration == .open)
        #expect(configuration.corsOrigins.isEmpty)
        #expect(configuration.logLevel == .info)
    }

    @Test func environmentFillsWhatFlagsLeaveOut() throws {
        let command = try #require(try CairnCommand.parseAsRoot(["serve", "--port", "9001"]) as? ServeCommand)
        let configuration = try command.resolvedConfiguration(environment: [
            "CAIRN_PORT": "7000", "CAIRN_HOST": "0.0.0.0", "CAIRN_DATA_DIR": "/tmp/x", "CAIRN_REGISTRATION": "closed",
            "CAIRN_CORS_ORIGINS": "https://a.example, chrome-extension://*", "CAIRN_LOG_LEVEL": "debug",
        ])
        #expect(configuration.port == 9001)
        #expect(configuration.host == "0.0.0.0")
        #expect(configuration.dataDirectory.path == "/tmp/x")
        #expect(configuration.registration == .closed)
        #expect(configuration.corsOrigins == ["https://a.example", "chrome-extension://*"])
        #expect(configuration.logLevel == .debug)
    }

    @Test func repeatableCorsOriginFlag() throws {
        let command = try #require(
            try CairnCommand.parseAsRoot(["serve", "--cors-origin", "https://a.example", "--cors-origin", "https://b.example"]) as? ServeCommand
        )
        #expect(try command.resolvedConfiguration(environment: ["CAIRN_CORS_ORIGINS": "https://c.example"]).corsOrigins == ["https://a.example", "https://b.example"])
    }

    @Test func rejectsBadValuesWithAClearMessage() throws {
        let badRegistration = try #require(try CairnCommand.parseAsRoot(["serve", "--registration", "maybe"]) as? ServeCommand)
        #expect(throws: ValidationError.self) { try badRegistration.resolvedConfiguration(environment: [:]) }
        let badPort = try #require(try CairnCommand.parseAsRoot(["serve"]) as? ServeCommand)
        #expect(throws: ValidationError.self) { try badPort.resolvedConfiguration(environment: ["CAIRN_PORT": "http"]) }
        let badLevel = try #require(try CairnCommand.parseAsRoot(["serve", "--log-level", "loud"]) as? ServeCommand)
        #expect(throws: ValidationError.self) { try badLevel.resolvedConfiguration(environment: [:]) }
    }
}
