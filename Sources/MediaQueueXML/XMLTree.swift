/// An XML element as a value: a name, its text, and its child elements in document order.
///
/// CI's wire formats use elements only (no attributes, no mixed content), so this small tree is
/// all the codecs need. A leaf carries `text`; a container carries `children` and no text.
public struct XMLTree: Sendable, Hashable {
    public var name: String
    public var text: String
    public var children: [XMLTree]

    /// A leaf element with text.
    public init(_ name: String, text: String) {
        self.name = name
        self.text = text
        self.children = []
    }

    /// A container element.
    public init(_ name: String, children: [XMLTree] = []) {
        self.name = name
        self.text = ""
        self.children = children
    }

    /// The first child element named `name`.
    public subscript(_ name: String) -> XMLTree? {
        children.first { $0.name == name }
    }

    /// Every child element named `name`, in document order.
    public func all(_ name: String) -> [XMLTree] {
        children.filter { $0.name == name }
    }

    /// The text of the element at `path` below this one, or nil when it is absent.
    public func text(_ path: String...) -> String? {
        var node = self
        for name in path {
            guard let child = node[name] else { return nil }
            node = child
        }
        return node.text
    }

    /// Replaces the first child named `child.name`, or appends it.
    public mutating func set(_ child: XMLTree) {
        if let index = children.firstIndex(where: { $0.name == child.name }) {
            children[index] = child
        } else {
            children.append(child)
        }
    }

    /// Removes every child named `name`.
    public mutating func remove(_ name: String) {
        // Checked first: `removeAll` copies a shared array even when nothing matches, and the
        // trees here are mostly shared (a job's stored Operation, copied into each callback).
        guard children.contains(where: { $0.name == name }) else { return }
        children.removeAll { $0.name == name }
    }

    /// Whether this element has neither text nor children.
    public var isEmpty: Bool { text.isEmpty && children.isEmpty }
}
