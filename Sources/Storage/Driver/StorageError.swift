import TowerJSON

/// A storage failure with a message a user can act on.
public struct StorageError: Error, Sendable, CustomStringConvertible, Equatable {
    public struct Kind: Sendable, Hashable, CustomStringConvertible {
        let name: String
        public var description: String { name }

        public static let unreachable = Kind(name: "unreachable")
        public static let authentication = Kind(name: "authentication")
        public static let missingDatabase = Kind(name: "missing database")
        public static let schemaBehind = Kind(name: "schema behind")
        public static let migration = Kind(name: "migration")
        public static let configuration = Kind(name: "configuration")
        public static let uniqueViolation = Kind(name: "unique violation")
        public static let foreignKeyViolation = Kind(name: "foreign key violation")
        public static let notFound = Kind(name: "not found")
        public static let decoding = Kind(name: "decoding")
        public static let query = Kind(name: "query")
        /// A value no database can store (text with the NUL character): the caller's input is wrong.
        public static let invalidValue = Kind(name: "invalid value")
    }

    public var kind: Kind
    public var message: String
    /// For unique violations: the constraint or column that was violated, when known.
    public var constraint: String?

    public init(_ kind: Kind, _ message: String, constraint: String? = nil) {
        self.kind = kind
        self.message = message
        self.constraint = constraint
    }

    public var description: String { message }

    static let nulMessage = "text containing the NUL character (U+0000) cannot be stored"

    /// Both drivers send a JSON bind as its compact text and refuse a value that holds the NUL
    /// character, the same way in both dialects: PostgreSQL rejects such text and SQLite would
    /// silently cut it short. Each driver checks as it binds (`SQLiteHandle.bindAll`,
    /// `PostgresSession.bindings`); `Columns.makeBindReady` does it ahead, off the writer.
    ///
    /// A JSON bind's compact text as a `String`: refused when it holds the NUL character.
    static func storableString(_ json: JSONValue) throws(StorageError) -> String {
        guard let text = json.compactTextWithoutNUL() else { throw StorageError(.invalidValue, nulMessage) }
        return text
    }

    /// Refuses text that holds the NUL character (see above).
    static func refuseNUL(_ text: String) throws(StorageError) {
        if text.containsNUL { throw StorageError(.invalidValue, nulMessage) }
    }

    /// A JSON bind's compact text, as both drivers send it, in UTF-8 bytes: refused when it holds
    /// the NUL character (see above).
    static func storableText(_ json: JSONValue) throws(StorageError) -> [UInt8] {
        guard let text = json.compactBytesWithoutNUL() else { throw StorageError(.invalidValue, nulMessage) }
        return text
    }
}
