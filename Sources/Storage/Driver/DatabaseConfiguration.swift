import Foundation
import Logging

/// Which database to use, from `DATABASE_URL` (legacy name) or the embedded default.
public enum DatabaseLocation: Sendable, Equatable, CustomStringConvertible {
    case sqlite(path: String)
    case postgres(url: String)

    /// The embedded default, relative to the working directory.
    public static let defaultSQLitePath = ".tower/tower.db"

    /// Parses `DATABASE_URL`: `postgres://…`, `postgresql://…`, `sqlite:///relative.db`,
    /// `sqlite:////absolute/path.db` (SQLAlchemy's forms), or a plain file path.
    public init(url: String?) throws(StorageError) {
        guard let url, !url.trimmingCharacters(in: .whitespaces).isEmpty else {
            self = .sqlite(path: Self.defaultSQLitePath)
            return
        }
        if url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") || url.hasPrefix("postgresql+") {
            self = .postgres(url: url)
        } else if url.hasPrefix("sqlite:") {
            // `sqlite:x.db` or `sqlite:/x.db` is a URL misspelt, not a file of that name in the
            // working directory.
            let rest = url.hasPrefix("sqlite://") ? String(url.dropFirst("sqlite://".count)) : ""
            guard rest.hasPrefix("/"), rest.count > 1 else {
                throw StorageError(.configuration, "DATABASE_URL '\(url)': write sqlite:///relative/path.db or sqlite:////absolute/path.db")
            }
            let path = String(rest.dropFirst())
            if path == ":memory:" {
                throw StorageError(.configuration, "DATABASE_URL: an in-memory SQLite database cannot be shared by the API and the worker; name a file")
            }
            self = .sqlite(path: path)
        } else if url.contains("://") {
            throw StorageError(.configuration, "DATABASE_URL '\(PostgresSettings.redacted(url))' is neither postgres:// nor sqlite://")
        } else {
            self = .sqlite(path: url)
        }
    }

    public var description: String {
        switch self {
        case .sqlite(let path): return "SQLite \(URL(fileURLWithPath: path).standardizedFileURL.path)"
        case .postgres(let url): return "PostgreSQL \(PostgresSettings.redacted(url))"
        }
    }

    /// Opens the database. `poolSize` bounds PostgreSQL connections (unless the URL names one);
    /// on SQLite it sizes the readers next to the one writer: half of it, from 1 to 4 (each
    /// connection holds two files open, so a small pool keeps a process's descriptors few).
    public func open(poolSize: Int = 10, logger: Logger = Logger(label: "tower.storage")) async throws(StorageError)
        -> any DatabaseDriver
    {
        switch self {
        case .sqlite(let path):
            return try await SQLiteDriver.open(path: path, readers: min(4, max(1, poolSize / 2)), logger: logger)
        case .postgres(let url):
            return try await PostgresDriver.open(PostgresSettings(url: url, maximumConnections: poolSize), logger: logger)
        }
    }
}
