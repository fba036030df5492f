/// What a per-key cap ends to make room for one more entry: of one key's `owned` entries, the
/// least recently used beyond `limit - 1`, oldest first. One rule for the MCP sessions, the
/// console's sessions and its live logs, so that a client opening them in a loop cannot grow the
/// process without end.
func evictedForOneMore<Key, Value>(_ owned: [Key: Value], limit: Int, lastUsed: (Value) -> ContinuousClock.Instant) -> [Key] {
    owned.sorted { lastUsed($0.value) < lastUsed($1.value) }.prefix(max(0, owned.count + 1 - limit)).map(\.key)
}
