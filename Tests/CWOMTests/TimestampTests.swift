import CWOM
import Testing

@Suite("Timestamps")
struct TimestampTests {
    @Test("format and parse round-trip at microsecond precision")
    func roundTrip() throws {
        let t = try #require(Timestamp(iso8601: "2026-11-24T22:11:23.094351Z"))
        #expect(t.iso8601 == "2026-11-24T22:11:23.094351Z")
        #expect(t.sqliteText == "2026-11-24 22:11:23.094351")
        #expect(Timestamp(iso8601: t.sqliteText) == t)
    }

    @Test("the shapes the legacy service wrote are read as UTC")
    func legacyShapes() throws {
        let reference = try #require(Timestamp(iso8601: "2026-11-24T22:11:23Z"))
        #expect(Timestamp(iso8601: "2026-11-24 22:11:23") == reference)  // SQLite CURRENT_TIMESTAMP
        #expect(Timestamp(iso8601: "2026-11-24T22:11:23+00:00") == reference)
        #expect(Timestamp(iso8601: "2026-11-25T00:11:23+02:00") == reference)
        #expect(Timestamp(iso8601: "2026-11-24T17:11:23-0500") == reference)
        #expect(Timestamp(iso8601: "2026-11-24T22:11:23.5Z")?.microseconds == reference.microseconds + 500_000)
        #expect(Timestamp(iso8601: "2026-11-24") == Timestamp(iso8601: "2026-11-24T00:00:00Z"))
    }

    @Test("nonsense is rejected", arguments: ["", "yesterday", "2026-13-01T00:00:00Z", "2026-02-30", "2026-11-24T25:00Z", "2026-11-24T10:00:00Zjunk"])
    func rejects(_ text: String) {
        #expect(Timestamp(iso8601: text) == nil)
    }

    @Test("every instant of years 1 to 9999 formats with fixed widths and parses back to itself")
    func formatWidths() throws {
        #expect(Timestamp(iso8601: "0001-01-01T00:00:00Z")?.iso8601 == "0001-01-01T00:00:00.000000Z")
        #expect(Timestamp(iso8601: "9999-12-31T23:59:59.999999Z")?.sqliteText == "9999-12-31 23:59:59.999999")
        #expect(Timestamp(iso8601: "0099-03-04T05:06:07.000089Z")?.iso8601 == "0099-03-04T05:06:07.000089Z")
        let year10000 = try #require(Timestamp(iso8601: "9999-12-31T23:59:59.999999Z")).adding(seconds: 0.000001)
        #expect(year10000.iso8601 == "10000-01-01T00:00:00.000000Z", "wider years keep every digit")
        let first = try #require(Timestamp(iso8601: "0001-01-01T00:00:00Z")).microseconds
        let last = try #require(Timestamp(iso8601: "9999-12-31T23:59:59.999999Z")).microseconds
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            let t = Timestamp(microseconds: Int64.random(in: first...last, using: &generator))
            #expect(t.iso8601.utf8.count == 27 && t.sqliteText.utf8.count == 26)
            #expect(Timestamp(iso8601: t.iso8601) == t, "\(t.microseconds)")
            #expect(Timestamp(iso8601: t.sqliteText) == t, "\(t.microseconds)")
            #expect(t.withSQLiteText { String(decoding: $0, as: UTF8.self) } == t.sqliteText, "the bytes a driver binds")
        }
        #expect(year10000.withSQLiteText { String(decoding: $0, as: UTF8.self) } == "10000-01-01 00:00:00.000000")
        #expect(year10000.withSQLiteText(utcOffset: true) { String(decoding: $0, as: UTF8.self) } == "10000-01-01 00:00:00.000000+00")
        #expect(Timestamp(microseconds: 0).withSQLiteText(utcOffset: true) { String(decoding: $0, as: UTF8.self) } == "1970-01-01 00:00:00.000000+00")
    }

    @Test("dates before 1970 and leap days work")
    func calendar() {
        #expect(Timestamp(iso8601: "1969-12-31T23:59:59Z")?.microseconds == -1_000_000)
        #expect(Timestamp(iso8601: "2024-02-29T12:00:00Z")?.iso8601 == "2024-02-29T12:00:00.000000Z")
        #expect(Timestamp(microseconds: -1).iso8601 == "1969-12-31T23:59:59.999999Z")
    }
}
