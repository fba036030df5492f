import CWOM
import Foundation
import Spawn
import Testing
import TowerJSON

/// The repository root, found from this file's location.
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()
let committedSchemas = repositoryRoot.appendingPathComponent("docs/cwom/schema")

@Suite("The JSON Schema contract")
struct SchemaContractTests {
    @Test("the committed schemas in docs/cwom/schema match the model")
    func committedSchemasMatch() throws {
        let files = CWOMCatalog.schemaFiles()
        let onDisk = try FileManager.default.contentsOfDirectory(atPath: committedSchemas.path).filter {
            $0.hasSuffix(".json")
        }
        #expect(
            Set(onDisk) == Set(files.map { $0.name + ".json" }),
            "docs/cwom/schema holds other files than the model exports. Regenerate: swift run tower schema export docs/cwom/schema"
        )
        for file in files {
            let url = committedSchemas.appendingPathComponent(file.name + ".json")
            let committed = try JSONParser.parse(String(decoding: try Data(contentsOf: url), as: UTF8.self))
            #expect(
                committed == .object(file.schema),
                "\(file.name).json differs from the CWOM model. If the model change is intended, regenerate the committed schemas with: swift run tower schema export docs/cwom/schema"
            )
        }
    }

    @Test("every object schema declares kind, id and each of its timestamps")
    func objectSchemasHaveHeaders() {
        for type in CWOMCatalog.objects {
            let properties = type.jsonSchema["properties"]?.objectValue
            #expect(properties?["kind"] == ["const": .string(type.schemaName), "default": .string(type.schemaName)])
            #expect(properties?["id"] != nil)
            #expect(type.createSchema["properties"]?["id"] == nil, "\(type.schemaName)Create must not take an id")
        }
    }
}

/// Runs Python's `jsonschema` (an independent implementation of draft 2020-12) over cases.
/// Waits for it without holding a thread: the suite's tasks share two, and a blocking wait here
/// (seconds, for Python to start and import under the suite's load) held back every other test's
/// tasks, 7 s at a time.
func validateWithPython(_ cases: [(schema: String, instance: JSONValue)]) async throws -> [Bool] {
    let work = FileManager.default.temporaryDirectory.appendingPathComponent("cwom-schema-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: work) }
    let casesFile = work.appendingPathComponent("cases.json")
    let payload = JSONValue.array(cases.map { ["schema": .string($0.schema), "instance": $0.instance] })
    try payload.serialized().write(to: casesFile, atomically: true, encoding: .utf8)
    let script = """
        import json, sys, pathlib
        from jsonschema import Draft202012Validator
        root = pathlib.Path(sys.argv[1])
        cases = json.loads(pathlib.Path(sys.argv[2]).read_text())
        validators = {}
        out = []
        for case in cases:
            name = case["schema"]
            if name not in validators:
                schema = json.loads((root / (name + ".json")).read_text())
                Draft202012Validator.check_schema(schema)
                validators[name] = Draft202012Validator(schema)
            out.append(validators[name].is_valid(case["instance"]))
        print(json.dumps(out))
        """
    let output = work.appendingPathComponent("out.json")
    let python = try ChildProcess(
        ["/usr/bin/env", "python3", "-c", script, committedSchemas.path, casesFile.path],
        environment: ProcessInfo.processInfo.environment, stdout: .file(output), stderr: .inherit)
    let status = await python.wait(timeout: 300)
    guard status == .exited(0) else {
        python.send(SIGKILL)
        throw ValidatorFailure(message: "python3 jsonschema ended with \(status.map(\.description) ?? "a timeout"); run scripts/test, which installs it")
    }
    let result = try JSONParser.parse(String(decoding: try Data(contentsOf: output), as: UTF8.self))
    return (result.arrayValue ?? []).map { $0.boolValue ?? false }
}

struct ValidatorFailure: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

@Suite("Objects encoded by the Swift model against the exported schemas (Python jsonschema)")
struct IndependentValidationTests {
    @Test("valid objects pass and deliberately invalid ones fail")
    func validAndInvalid() async throws {
        var cases: [(schema: String, instance: JSONValue)] = []
        var expected: [Bool] = []
        func add(_ schema: String, _ instance: JSONValue, valid: Bool) {
            cases.append((schema, instance))
            expected.append(valid)
        }
        for (type, json) in Fixtures.all {
            let encoded = try decodeAny(type, json).json
            add(type.schemaName, encoded, valid: true)
            // Objects made through the create path, with defaults filled in, also validate.
            add(type.schemaName, encoded.setting(path("colour"), to: "blue"), valid: false)
            add(type.schemaName, encoded.setting(path("kind"), to: "Other"), valid: false)
            add(type.schemaName, encoded.setting(path("id"), to: ""), valid: false)
        }
        let repo = try Repo.create(from: ["name": "x", "slug": "org/x", "source": ["system": "jct"]])
        add("Repo", repo.json, valid: true)
        add("RepoCreate", ["name": "x", "slug": "org/x", "source": ["system": "jct"]], valid: true)
        add("RepoCreate", ["name": "x", "slug": "org/x", "source": ["system": "jct"], "id": "x"], valid: false)
        add("Repo", repo.json.setting(path("name"), to: .string(String(repeating: "n", count: 257))), valid: false)
        add("Repo", repo.json.setting(path("visibility"), to: "secret"), valid: false)
        add("Issue", Fixtures.issue.setting(path("repo.kind"), to: "Run"), valid: false)
        add("Issue", Fixtures.issue.setting(path("title"), to: nil), valid: false)
        add("Run", Fixtures.run.setting(path("cost.tokens"), to: -1), valid: false)
        add("ConstraintSnapshot", Fixtures.constraintSnapshot.setting(path("constraints.energy.score_0_5"), to: 6), valid: false)
        add("RunUpdate", ["status": "done"], valid: true)
        add("RunUpdate", ["status": "finished"], valid: false)
        #expect(try await validateWithPython(cases) == expected)
    }
}
