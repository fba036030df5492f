/// The fields of a large value kept behind one immutable reference, for a value type that is
/// copied far more often than it is changed (`LifecycleEngine.Claim`, `LifecycleEngine.Completion`):
/// a copy retains the box instead of every string and array inside; a change makes a new box, so
/// the owner keeps value semantics.
struct Boxed<Fields: Sendable>: Sendable {
    private final class Box: Sendable {
        let fields: Fields
        init(_ fields: Fields) { self.fields = fields }
    }

    private var box: Box

    init(_ fields: Fields) { box = Box(fields) }

    var fields: Fields { box.fields }

    mutating func change(_ edit: (inout Fields) -> Void) {
        var fields = box.fields
        edit(&fields)
        box = Box(fields)
    }
}
