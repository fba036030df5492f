import TowerJSON
import Foundation

/// A UTC instant with microsecond precision (the precision of PostgreSQL `timestamptz` and of
/// the legacy Python timestamps). Stored as an integer so that values round-trip exactly through
/// JSON, SQLite text and PostgreSQL binary encodings.
public struct Timestamp: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Microseconds since 1970-01-01T00:00:00Z.
    public var microseconds: Int64

    public init(microseconds: Int64) { self.microseconds = microseconds }

    public init(date: Date) {
        self.microseconds = Int64((date.timeIntervalSince1970 * 1_000_000).rounded())
    }

    /// The current time.
    public static func now() -> Timestamp { Timestamp(date: Date()) }

    public var date: Date { Date(timeIntervalSince1970: Double(microseconds) / 1_000_000) }

    public var secondsSinceEpoch: Double { Double(microseconds) / 1_000_000 }

    public static func < (lhs: Timestamp, rhs: Timestamp) -> Bool { lhs.microseconds < rhs.microseconds }

    public func adding(seconds: Double) -> Timestamp {
        Timestamp(microseconds: microseconds + Int64((seconds * 1_000_000).rounded()))
    }

    /// Seconds from `other` to `self`.
    public func seconds(since other: Timestamp) -> Double {
        Double(microseconds - other.microseconds) / 1_000_000
    }

    // MARK: - Formatting

    /// `2026-11-24T22:11:23.094351Z`: ISO-8601, UTC, microseconds. The canonical CWOM format.
    public var iso8601: String { format(dateTimeSeparator: UInt8(ascii: "T"), zulu: true) }

    /// `2026-11-24 22:11:23.094351`: how SQLAlchemy stores a datetime in SQLite, so that rows
    /// written by Control Tower stay readable by the legacy service.
    public var sqliteText: String { format(dateTimeSeparator: UInt8(ascii: " "), zulu: false) }

    public var description: String { iso8601 }

    /// The `sqliteText` form, handed to `body` as its UTF-8 bytes without a `String` made: a
    /// driver copies it into its message or statement as it binds it (every row and audit entry
    /// a completion writes carries timestamps, and each `String` was an allocation). With
    /// `utcOffset`, followed by `+00`, which PostgreSQL reads as UTC whatever the session's zone.
    public func withSQLiteText<R>(utcOffset: Bool = false, _ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
        try withUnsafeTemporaryAllocation(of: UInt8.self, capacity: Self.formattedCapacity + 3) { buffer in
            guard var count = write(into: buffer, dateTimeSeparator: UInt8(ascii: " "), zulu: false) else {
                var text = sqliteText + (utcOffset ? "+00" : "")
                return try text.withUTF8(body)
            }
            if utcOffset {
                for byte in "+00".utf8 {
                    buffer[count] = byte
                    count += 1
                }
            }
            return try body(UnsafeBufferPointer(rebasing: buffer[..<count]))
        }
    }

    /// Written into one buffer: every stored row and audit entry carries several timestamps, and
    /// the text built of twelve small strings was a twelfth of a request thread at intake (`perf`).
    private func format(dateTimeSeparator: UInt8, zulu: Bool) -> String {
        let text = String(unsafeUninitializedCapacity: Self.formattedCapacity) { buffer in
            write(into: buffer, dateTimeSeparator: dateTimeSeparator, zulu: zulu) ?? 0
        }
        return text.isEmpty ? wideYearFormat(dateTimeSeparator: dateTimeSeparator, zulu: zulu) : text
    }

    /// The instants of years 0 to 9999, which `write(into:…)` writes.
    private static let fourDigitYears = (days(year: 0, month: 1, day: 1) * 86_400_000_000)..<(days(year: 10_000, month: 1, day: 1) * 86_400_000_000)

    /// `2026-11-24 22:11:23.094351` plus `Z` with `zulu`: at most 27 bytes.
    private static let formattedCapacity = 27

    /// Writes the text at the start of `buffer` and returns its length; nil for a year outside
    /// 0...9999, which `wideYearFormat` writes instead.
    private func write(into buffer: UnsafeMutableBufferPointer<UInt8>, dateTimeSeparator: UInt8, zulu: Bool) -> Int? {
        let (days, micros) = microseconds.floorDividedAndModulo(86_400_000_000)
        let (year, month, day) = Self.civil(fromDays: days)
        guard (0...9999).contains(year) else { return nil }
        let secondsOfDay = micros / 1_000_000
        let fraction = micros % 1_000_000
        var at = 0
        func put(_ value: Int64, _ width: Int) {
            var rest = value
            for position in stride(from: at + width - 1, through: at, by: -1) {
                buffer[position] = UInt8(truncatingIfNeeded: 0x30 + rest % 10)
                rest /= 10
            }
            at += width
        }
        func put(_ byte: UInt8) {
            buffer[at] = byte
            at += 1
        }
        put(year, 4); put(UInt8(ascii: "-")); put(month, 2); put(UInt8(ascii: "-")); put(day, 2)
        put(dateTimeSeparator)
        put(secondsOfDay / 3600, 2); put(UInt8(ascii: ":")); put(secondsOfDay / 60 % 60, 2); put(UInt8(ascii: ":"))
        put(secondsOfDay % 60, 2); put(UInt8(ascii: ".")); put(fraction, 6)
        if zulu { put(UInt8(ascii: "Z")) }
        return at
    }

    /// Years outside 0...9999 (never written by Control Tower; kept exact for any value).
    private func wideYearFormat(dateTimeSeparator: UInt8, zulu: Bool) -> String {
        let (days, micros) = microseconds.floorDividedAndModulo(86_400_000_000)
        let (year, month, day) = Self.civil(fromDays: days)
        let secondsOfDay = micros / 1_000_000
        let fraction = micros % 1_000_000
        return pad(year, 4) + "-" + pad(month, 2) + "-" + pad(day, 2) + String(UnicodeScalar(dateTimeSeparator))
            + pad(secondsOfDay / 3600, 2) + ":" + pad(secondsOfDay / 60 % 60, 2) + ":" + pad(secondsOfDay % 60, 2)
            + "." + pad(fraction, 6) + (zulu ? "Z" : "")
    }

    private func pad(_ value: Int64, _ width: Int) -> String {
        let text = String(value)
        return text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
    }

    // MARK: - Parsing

    /// Parses ISO-8601 / RFC 3339 date-times: `T` or a space between date and time, optional
    /// fraction (up to nanoseconds, truncated to microseconds), and `Z`, `±HH:MM`, `±HHMM` or no
    /// offset (read as UTC, which is how the legacy SQLite columns store values). A bare date
    /// means midnight UTC.
    public init?(iso8601 text: String) {
        let b = Array(text.utf8)
        var i = 0
        func digits(_ count: Int) -> Int64? {
            guard i + count <= b.count else { return nil }
            var value: Int64 = 0
            for k in i..<i + count {
                guard b[k] >= 0x30, b[k] <= 0x39 else { return nil }
                value = value * 10 + Int64(b[k] - 0x30)
            }
            i += count
            return value
        }
        func expect(_ c: Character) -> Bool {
            guard i < b.count, b[i] == c.asciiValue else { return false }
            i += 1
            return true
        }
        guard let year = digits(4), expect("-"), let month = digits(2), expect("-"), let day = digits(2),
            (1...12).contains(month), (1...Self.daysIn(month: month, year: year)).contains(day)
        else { return nil }
        var micros: Int64 = 0
        if i < b.count {
            guard b[i] == UInt8(ascii: "T") || b[i] == UInt8(ascii: "t") || b[i] == UInt8(ascii: " ") else { return nil }
            i += 1
            guard let hour = digits(2), expect(":"), let minute = digits(2), hour < 24, minute < 60 else { return nil }
            var second: Int64 = 0
            if expect(":") {
                guard let s = digits(2), s < 60 else { return nil }
                second = s
                if i < b.count, b[i] == UInt8(ascii: ".") || b[i] == UInt8(ascii: ",") {
                    i += 1
                    var fraction: Int64 = 0
                    var count = 0
                    while i < b.count, b[i] >= 0x30, b[i] <= 0x39 {
                        if count < 6 { fraction = fraction * 10 + Int64(b[i] - 0x30) }
                        count += 1
                        i += 1
                    }
                    guard count > 0 else { return nil }
                    for _ in count..<max(count, 6) { fraction *= 10 }
                    micros = fraction
                }
            }
            micros += ((hour * 60 + minute) * 60 + second) * 1_000_000
            if i < b.count {
                if b[i] == UInt8(ascii: "Z") || b[i] == UInt8(ascii: "z") {
                    i += 1
                } else if b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") {
                    let sign: Int64 = b[i] == UInt8(ascii: "+") ? 1 : -1
                    i += 1
                    guard let oh = digits(2) else { return nil }
                    _ = expect(":")
                    let om = digits(2) ?? 0
                    guard oh < 24, om < 60 else { return nil }
                    micros -= sign * (oh * 60 + om) * 60_000_000
                } else {
                    return nil
                }
            }
        }
        guard i == b.count else { return nil }
        self.microseconds = Self.days(year: year, month: month, day: day) * 86_400_000_000 + micros
    }

    // Howard Hinnant's civil-from-days algorithms.
    static func days(year y0: Int64, month m: Int64, day d: Int64) -> Int64 {
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func civil(fromDays z0: Int64) -> (Int64, Int64, Int64) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }

    static func daysIn(month: Int64, year: Int64) -> Int64 {
        switch month {
        case 2: return (year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }
}

extension Int64 {
    fileprivate func floorDividedAndModulo(_ divisor: Int64) -> (Int64, Int64) {
        let q = self / divisor
        let r = self % divisor
        return r < 0 ? (q - 1, r + divisor) : (q, r)
    }
}

extension Timestamp: JSONRepresentable, JSONWritable {
    public var json: JSONValue { .string(iso8601) }
    /// Its `iso8601` text, written where it goes (a dozen timestamps an enqueue).
    public func write(to sink: inout JSONSink) {
        guard Self.fourDigitYears.contains(microseconds) else {
            sink.string(iso8601)
            return
        }
        sink.asciiString(capacity: Self.formattedCapacity) { buffer in
            write(into: buffer, dateTimeSeparator: UInt8(ascii: "T"), zulu: true) ?? 0
        }
    }
}
