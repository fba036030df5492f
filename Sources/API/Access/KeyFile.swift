import Crypto
import Foundation

/// One key of `TOWER_API_KEYS_FILE`: its name (the audit actor of what it does), its scopes, the
/// SHA-256 of the key (the key itself is never stored) and an optional rate limit.
public struct KeyEntry: Sendable, Equatable {
    public var name: String
    public var scopes: Set<Scope>
    public var digest: [UInt8]
    public var rate: RateLimit?

    public init(name: String, scopes: Set<Scope>, digest: [UInt8], rate: RateLimit? = nil) {
        self.name = name
        self.scopes = scopes
        self.digest = digest
        self.rate = rate
    }

    /// The entry for a new secret.
    public init(name: String, scopes: Set<Scope>, secret: String, rate: RateLimit? = nil) {
        self.init(name: name, scopes: scopes, digest: KeyEntry.digest(of: secret), rate: rate)
    }

    /// `NAME SCOPES sha256:HEX [rate=N/s]`, the line the file holds.
    public var line: String {
        var fields = [name, scopes.sorted().map(\.rawValue).joined(separator: ","), "sha256:" + KeyEntry.hex(digest)]
        if let rate { fields.append("rate=\(rate)") }
        return fields.joined(separator: " ")
    }

    public static func digest(of secret: String) -> [UInt8] { Array(SHA256.hash(data: Array(secret.utf8))) }

    static func hex(_ bytes: [UInt8]) -> String {
        bytes.map { String(format: "%02x", $0) }.joined()
    }

    /// A new key: `tower_` and 43 characters of base64url, 256 random bits from the system's
    /// cryptographic generator.
    public static func newSecret() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        let base64 = Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
        return "tower_" + base64
    }

    /// Names are what audit rows and logs show: letters, digits, `.`, `_`, `-`, `@`, 1–64 characters.
    public static func isValidName(_ name: String) -> Bool {
        (1...64).contains(name.count)
            && name.unicodeScalars.allSatisfy {
                ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || "._-@".unicodeScalars.contains($0)
            }
    }
}

/// At most `requests` requests per `seconds`, per key: `30/s`, `600/m`, `5000/h`.
public struct RateLimit: Sendable, Equatable, CustomStringConvertible {
    public var requests: Int
    public var seconds: Int

    public init(requests: Int, seconds: Int) {
        self.requests = requests
        self.seconds = seconds
    }

    /// `N/s`, `N/m` or `N/h` with N ≥ 1; nil for anything else.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let requests = Int(parts[0]), requests >= 1 else { return nil }
        switch parts[1] {
        case "s": seconds = 1
        case "m": seconds = 60
        case "h": seconds = 3600
        default: return nil
        }
        self.requests = requests
    }

    public var description: String {
        "\(requests)/" + (seconds == 1 ? "s" : seconds == 60 ? "m" : "h")
    }
}

/// A mistake in the keys file, with its place.
public struct KeyFileError: Error, Sendable, CustomStringConvertible {
    public var path: String
    public var line: Int
    public var message: String

    public var description: String { "\(path) line \(line): \(message)" }
}

/// `TOWER_API_KEYS_FILE`: one key a line, `NAME SCOPES sha256:HEX [rate=N/s|N/m|N/h]`, fields
/// separated by spaces; blank lines and lines starting with `#` are ignored.
public enum KeyFile {
    public static let header = """
        # Control Tower API keys (TOWER_API_KEYS_FILE): NAME SCOPES sha256:DIGEST [rate=N/s|N/m|N/h]
        # Scopes: read, write, review, agent, admin. Add keys with `tower keys add`; remove a line to revoke.

        """

    public static func parse(_ text: String, path: String) throws(KeyFileError) -> [KeyEntry] {
        var entries: [KeyEntry] = []
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            func fail(_ message: String) -> KeyFileError { KeyFileError(path: path, line: index + 1, message: message) }
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard (3...4).contains(fields.count) else {
                throw fail("expected NAME SCOPES sha256:DIGEST [rate=N/s], found \(fields.count) fields")
            }
            let name = fields[0]
            guard KeyEntry.isValidName(name) else {
                throw fail("invalid key name '\(name)' (letters, digits, . _ - @; at most 64)")
            }
            guard !entries.contains(where: { $0.name == name }) else { throw fail("the name '\(name)' is used twice") }
            var scopes: Set<Scope> = []
            for word in fields[1].split(separator: ",") {
                guard let scope = Scope(rawValue: String(word)) else {
                    throw fail("unknown scope '\(word)' (one of \(Scope.names))")
                }
                scopes.insert(scope)
            }
            guard !scopes.isEmpty else { throw fail("the key '\(name)' has no scope") }
            let hex = fields[2]
            guard hex.hasPrefix("sha256:"), let digest = Self.bytes(hex: String(hex.dropFirst(7))), digest.count == 32 else {
                throw fail("the digest must be sha256: and 64 hexadecimal digits (the key itself is never stored)")
            }
            var rate: RateLimit?
            if fields.count == 4 {
                guard fields[3].hasPrefix("rate="), let limit = RateLimit(String(fields[3].dropFirst(5))) else {
                    throw fail("unknown option '\(fields[3])' (rate=N/s, rate=N/m or rate=N/h)")
                }
                rate = limit
            }
            entries.append(KeyEntry(name: name, scopes: scopes, digest: digest, rate: rate))
        }
        return entries
    }

    /// Reads and parses the file; a missing or unreadable file is an error (a typo in the path
    /// must not turn authentication off).
    public static func load(path: String) throws -> [KeyEntry] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw KeyFileError(path: path, line: 0, message: "cannot read the keys file")
        }
        return try parse(String(decoding: data, as: UTF8.self), path: path)
    }

    static func bytes(hex: String) -> [UInt8]? {
        let digits = Array(hex.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(digits.count / 2)
        for index in stride(from: 0, to: digits.count, by: 2) {
            guard let high = nibble(digits[index]), let low = nibble(digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
        }
        return bytes
    }

    static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
