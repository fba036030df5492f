/// Runs the calls given for one task one at a time, in the order they arrive.
///
/// An agent may send its tool calls in parallel. A report and a completion of one claim must not
/// overlap: the completion lists the Run's Artifacts before its transaction, so an Artifact
/// committed in between would exist without being in the Run's outputs or its evidence. In
/// turn, the report lands before the completion reads, or finds the claim completed and is
/// refused.
actor TaskCallQueue {
    /// Tasks with a call running, each with the calls waiting behind it.
    private var waiting: [String: [CheckedContinuation<Void, Never>]] = [:]

    func run<T: Sendable>(_ taskId: String, _ body: @Sendable () async throws -> T) async throws -> T {
        await enter(taskId)
        do {
            let result = try await body()
            leave(taskId)
            return result
        } catch {
            leave(taskId)
            throw error
        }
    }

    private func enter(_ taskId: String) async {
        guard waiting[taskId] != nil else {
            waiting[taskId] = []
            return
        }
        await withCheckedContinuation { waiting[taskId, default: []].append($0) }
    }

    /// Hands the task to the next call waiting for it, or frees it.
    private func leave(_ taskId: String) {
        guard var queue = waiting[taskId], !queue.isEmpty else {
            waiting[taskId] = nil
            return
        }
        let next = queue.removeFirst()
        waiting[taskId] = queue
        next.resume()
    }
}
