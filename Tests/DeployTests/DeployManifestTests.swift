import Foundation
import Testing
import TowerTestSupport

/// The deployment files use only commands, flags and environment variables that `tower` has.
@Suite("deploy/ stays in step with the tower command line")
struct DeployManifestTests {
    static let deploy = repositoryRoot.appendingPathComponent("deploy")

    static func read(_ path: String) throws -> String {
        try String(contentsOf: deploy.appendingPathComponent(path), encoding: .utf8)
    }

    /// `tower <words…>` invocations found in the files: [subcommand, arguments…].
    static func invocations() throws -> [[String]] {
        var result: [[String]] = []
        let list = try NSRegularExpression(pattern: #"(?:command|args|CMD|ENTRYPOINT|test):\s*\[([^\]]*)\]|CMD \[([^\]]*)\]"#)
        for file in ["docker-compose.yml", "kubernetes/tower.yaml", "Dockerfile"] {
            let text = try read(file)
            for match in list.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
                for group in 1...2 {
                    guard let range = Range(match.range(at: group), in: text) else { continue }
                    let words = text[range].split(separator: ",").map {
                        $0.trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
                    }
                    guard var first = words.first, !first.isEmpty, !first.hasPrefix("CMD"), first != "pg_isready" else { continue }
                    var rest = Array(words.dropFirst())
                    if first == "tower" {
                        first = rest.first ?? ""
                        rest = Array(rest.dropFirst())
                    }
                    result.append([first] + rest)
                }
            }
        }
        for unit in ["systemd/tower-api.service", "systemd/tower-worker@.service"] {
            for line in try read(unit).split(separator: "\n") where line.contains("/usr/local/bin/tower ") {
                let command = line.components(separatedBy: "/usr/local/bin/tower ").last ?? ""
                result.append(command.split(separator: " ").map(String.init))
            }
        }
        return result
    }

    /// Environment variable names the files set for tower.
    static func environmentNames() throws -> Set<String> {
        var names: Set<String> = []
        let key = try NSRegularExpression(pattern: #"^\s+([A-Z][A-Z0-9_]+):"#, options: .anchorsMatchLines)
        let compose = try read("docker-compose.yml")
        // Every service but the database's.
        let towerPart = compose.components(separatedBy: "\n  migrate:").dropFirst().joined()
        let kubernetes = try read("kubernetes/tower.yaml")
        for text in [towerPart, kubernetes] {
            for match in key.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
                if let range = Range(match.range(at: 1), in: text) { names.insert(String(text[range])) }
            }
        }
        for line in try read("systemd/tower.env.example").split(separator: "\n") where !line.hasPrefix("#") {
            if let name = line.split(separator: "=").first { names.insert(String(name)) }
        }
        let dockerfile = try read("Dockerfile")
        for part in dockerfile.components(separatedBy: "ENV ").dropFirst() {
            for line in part.split(separator: "\n") {
                guard let name = line.trimmingCharacters(in: .whitespaces).split(separator: "=").first, line.contains("=") else { break }
                names.insert(String(name))
            }
        }
        return names
    }

    func help(_ arguments: [String]) async throws -> (Int32, String) {
        let outcome = try await TowerBinary.run(arguments)
        return (outcome.status, outcome.stdout + outcome.stderr)
    }

    @Test("every tower subcommand and flag used by deploy/ exists")
    func commandsAndFlags() async throws {
        try #require(TowerBinary.isBuilt, "build tower first (scripts/test does)")
        let invocations = try Self.invocations()
        #expect(invocations.count >= 8, "the parser found the invocations: \(invocations)")
        for invocation in invocations {
            guard let subcommand = invocation.first else { continue }
            if subcommand == "--version" { continue }
            let (status, text) = try await help([subcommand, "--help"])
            #expect(status == 0, "tower \(subcommand) is not a command")
            for flag in invocation.dropFirst() where flag.hasPrefix("--") {
                #expect(text.contains(flag), "tower \(subcommand) has no \(flag)")
            }
        }
    }

    @Test("every environment variable deploy/ sets is read by tower")
    func environment() throws {
        let names = try Self.environmentNames()
        #expect(names.isSuperset(of: ["DATABASE_URL", "JCT_TRACE_ROOT", "JCT_ALLOWED_REPO_PREFIXES", "LOG_FORMAT"]))
        var sources = ""
        let enumerator = FileManager.default.enumerator(atPath: repositoryRoot.appendingPathComponent("Sources").path)
        while let file = enumerator?.nextObject() as? String {
            guard file.hasSuffix(".swift") else { continue }
            sources += (try? String(contentsOf: repositoryRoot.appendingPathComponent("Sources/\(file)"), encoding: .utf8)) ?? ""
        }
        for name in names {
            #expect(sources.contains("\"\(name)\""), "\(name) is set in deploy/ but tower never reads it")
        }
    }
}
