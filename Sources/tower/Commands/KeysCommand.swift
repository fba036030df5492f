import API
import ArgumentParser
import Foundation

/// `tower keys add|list|revoke`: the API keys of `TOWER_API_KEYS_FILE`. Only SHA-256 digests
/// are written; a new key is printed once and cannot be shown again.
struct KeysCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "Add, list and revoke API keys (the file of TOWER_API_KEYS_FILE; docs/operations.md).",
        discussion: """
            A running server re-reads the file on SIGHUP (or at its next start): add, rotate and revoke \
            keys without a restart.
            """,
        subcommands: [Add.self, List.self, Revoke.self]
    )

    struct FileOption: ParsableArguments {
        @Option(name: .customLong("file"), help: "The keys file (default: $TOWER_API_KEYS_FILE).")
        var path: String?

        func resolved() throws -> String {
            if let path, !path.isEmpty { return path }
            if let path = ProcessInfo.processInfo.environment["TOWER_API_KEYS_FILE"], !path.isEmpty { return path }
            throw CommandError("no keys file: pass --file PATH or set TOWER_API_KEYS_FILE")
        }

        /// The keys of the file; a file that does not exist yet has none.
        func entries(_ path: String) throws -> [KeyEntry] {
            guard FileManager.default.fileExists(atPath: path) else { return [] }
            do { return try KeyFile.load(path: path) } catch { throw CommandError("\(error)") }
        }
    }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a key: prints it once on stdout and appends its name, scopes and SHA-256 to the file.")

        @Argument(help: "The key's name: the actor of what it does in the audit log (letters, digits, . _ - @).")
        var name: String

        @Option(name: .customLong("scope"), help: "read, write, review, agent or admin; repeat for several.")
        var scopes: [String] = []

        @Option(help: "Requests per key: N/s, N/m or N/h (default: $TOWER_RATE_LIMIT of the server, else none).")
        var rate: String?

        @OptionGroup var file: FileOption

        func run() throws {
            let path = try file.resolved()
            guard KeyEntry.isValidName(name) else {
                throw ValidationError("invalid key name '\(name)': letters, digits, . _ - @, at most 64 characters")
            }
            guard !scopes.isEmpty else { throw ValidationError("give the key at least one --scope (\(Scope.names))") }
            var granted: Set<Scope> = []
            for text in scopes {
                guard let scope = Scope(rawValue: text) else {
                    throw ValidationError("unknown scope '\(text)' (one of \(Scope.names))")
                }
                granted.insert(scope)
            }
            var limit: RateLimit?
            if let rate {
                guard let parsed = RateLimit(rate) else { throw ValidationError("--rate must be N/s, N/m or N/h, not '\(rate)'") }
                limit = parsed
            }
            let existing = try file.entries(path)
            if existing.contains(where: { $0.name == name }) {
                FileHandle.standardError.write(Data("Error: a key named '\(name)' exists in \(path); revoke it first or pick another name\n".utf8))
                throw ExitCodes.conflict
            }
            let secret = KeyEntry.newSecret()
            let entry = KeyEntry(name: name, scopes: granted, secret: secret, rate: limit)
            try KeysCommand.append(entry, to: path)
            print(secret)
            FileHandle.standardError.write(
                Data(
                    "Added the key '\(name)' (\(entry.scopes.sorted().map(\.rawValue).joined(separator: ", "))) to \(path). The key above is shown only this once. A running server picks it up on SIGHUP.\n"
                        .utf8))
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The keys of the file: name, scopes, rate limit (never the keys).")

        @OptionGroup var file: FileOption

        func run() throws {
            let path = try file.resolved()
            // Nothing listed and nothing said read the same as a file without keys, and a path
            // mistyped in TOWER_API_KEYS_FILE went unnoticed.
            guard FileManager.default.fileExists(atPath: path) else {
                FileHandle.standardError.write(Data("no keys: \(path) does not exist yet (tower keys add creates it)\n".utf8))
                return
            }
            for entry in try file.entries(path) {
                let scopes = entry.scopes.sorted().map(\.rawValue).joined(separator: ",")
                print([entry.name, scopes, entry.rate.map { "rate=\($0)" } ?? ""].joined(separator: "\t"))
            }
        }
    }

    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a key from the file; a running server drops it on SIGHUP.")

        @Argument(help: "The key's name.")
        var name: String

        @OptionGroup var file: FileOption

        func run() throws {
            let path = try file.resolved()
            let entries = try file.entries(path)
            guard entries.contains(where: { $0.name == name }) else {
                FileHandle.standardError.write(Data("Error: no key named '\(name)' in \(path)\n".utf8))
                throw ExitCodes.notFound
            }
            try KeysCommand.remove(name, from: path)
            FileHandle.standardError.write(Data("Revoked the key '\(name)' in \(path). A running server drops it on SIGHUP.\n".utf8))
        }
    }

    /// Appends the key's line; a new file gets a header and is readable by its owner only.
    static func append(_ entry: KeyEntry, to path: String) throws {
        var text = entry.line + "\n"
        if let current = FileManager.default.contents(atPath: path) {
            if let last = current.last, last != UInt8(ascii: "\n") { text = "\n" + text }
        } else {
            text = KeyFile.header + text
        }
        let descriptor = open(path, O_WRONLY | O_APPEND | O_CREAT, 0o600)
        guard descriptor >= 0 else { throw CommandError("cannot write \(path): \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        let bytes = Array(text.utf8)
        guard bytes.withUnsafeBytes({ Foundation.write(descriptor, $0.baseAddress, $0.count) }) == bytes.count else {
            throw CommandError("cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// Removes the key's line and keeps every other line (comments too) as it was, through a
    /// temporary file renamed over the original, so a server never reads half a file.
    static func remove(_ name: String, from path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else { throw CommandError("cannot read \(path)") }
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        let kept = lines.filter { line in
            let first = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).first
            return line.trimmingCharacters(in: .whitespaces).hasPrefix("#") || first.map(String.init) != name
        }
        let url = URL(fileURLWithPath: path)
        let temporary = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).\(getpid()).tmp")
        let text = kept.joined(separator: "\n")
        guard FileManager.default.createFile(atPath: temporary.path, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw CommandError("cannot write \(temporary.path): check that the folder is writable")
        }
        guard rename(temporary.path, url.path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary.path)
            throw CommandError("cannot replace \(path): \(reason)")
        }
    }
}
