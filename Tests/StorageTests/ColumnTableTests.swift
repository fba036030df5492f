import Testing

@testable import Storage

/// A result's column names, found by an open-addressing table (`SQLColumns`).
@Suite("A result's columns by name")
struct ColumnTableTests {
    @Test("every name of a wide result is found at its position, a repeated name at its last, an absent one nowhere")
    func wideResult() {
        // 300 names fill the table's slots densely enough for probes to pass over one another.
        var names = (0..<300).map { "column_\($0)" }
        names += ["column_7", "", "é_accent", "column_7"]
        let columns = SQLColumns(names)
        for index in 0..<300 where index != 7 { #expect(columns.position("column_\(index)") == index) }
        #expect(columns.position("column_7") == 303, "the last of a repeated name")
        #expect(columns.position("") == 301)
        #expect(columns.position("é_accent") == 302)
        #expect(columns.position("column_300") == nil)
        #expect(columns.position("Column_1") == nil)
        #expect(columns.entries.count == 302, "one entry a distinct name")
        let prefixed = columns.prefixed("column_1")
        #expect(prefixed.position("") == 1)
        #expect(prefixed.position("0") == 10)
        #expect(prefixed.position("99") == 199)
        #expect(prefixed.position("column_10") == nil)
    }
}
