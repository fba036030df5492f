import ArgumentParser
import CWOM
import Foundation
import TowerJSON

struct SchemaCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schema",
        abstract: "Work with the CWOM JSON Schemas.",
        subcommands: [Export.self]
    )

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write one JSON Schema (draft 2020-12) per CWOM object and create payload into DIR.",
            discussion: "The committed copies live in docs/cwom/schema/; regenerate them with `tower schema export docs/cwom/schema`."
        )

        @Argument(help: "The folder to write the schema files into (created if missing).")
        var directory: String

        func run() throws {
            let url = URL(fileURLWithPath: directory, isDirectory: true)
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
            for file in CWOMCatalog.schemaFiles() {
                let text = JSONValue.object(file.schema).serialized(.init(pretty: true)) + "\n"
                try text.write(to: url.appendingPathComponent(file.name + ".json"), atomically: true, encoding: .utf8)
            }
            print("wrote \(CWOMCatalog.schemaFiles().count) schemas to \(url.path)")
        }
    }
}
