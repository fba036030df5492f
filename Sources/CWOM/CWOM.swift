import TowerJSON

/// The registry of CWOM object types, in the order of the causality chain.
public enum CWOMCatalog {
    /// Every object model with its create payload, for schema export and documentation.
    public static let objects: [any CWOMModel.Type] = [
        Repo.self, Issue.self, ContextPacket.self, ConstraintSnapshot.self, DoctrineRef.self, Run.self,
        Artifact.self, EvidencePack.self, ReviewDecision.self,
    ]

    /// Every schema file that `tower schema export` writes: `<Name>.json` for stored objects,
    /// `<Name>Create.json` for create payloads, and `RunUpdate.json`.
    public static func schemaFiles() -> [(name: String, schema: JSONObject)] {
        var files: [(String, JSONObject)] = []
        for type in objects {
            files.append((type.schemaName, type.jsonSchema))
            files.append((type.schemaName + "Create", type.createSchema))
        }
        files.append((RunUpdate.schemaName, ObjectReader.schema(of: RunUpdate.self, mode: .create)))
        return files.map { (name: $0.0, schema: $0.1) }
    }
}
