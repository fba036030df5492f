import ArgumentParser

struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Apply pending database migrations (not yet available)."
    )

    func run() async throws {
        throw ValidationError("migrations arrive with the storage layer")
    }
}
