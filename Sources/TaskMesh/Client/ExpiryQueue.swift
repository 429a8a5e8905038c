import DequeModule
import HeapModule

/// Deadlines to act on, earliest first, tuned for how a client makes them: most jobs take the
/// default deadline, so deadlines mostly arrive in order. Those append to a FIFO in O(1); only
/// one that is earlier than the latest so far goes to a heap.
struct ExpiryQueue<Key: Equatable> {
    struct Item: Comparable {
        let at: Instant
        let key: Key
        static func < (a: Item, b: Item) -> Bool { a.at < b.at }
        static func == (a: Item, b: Item) -> Bool { a.at == b.at && a.key == b.key }
    }

    private var inOrder = Deque<Item>()
    private var outOfOrder = Heap<Item>()

    init() {}

    /// A queue holding `items`, in any order.
    init(_ items: [Item]) {
        inOrder = Deque(items.sorted { $0.at < $1.at })
    }

    var count: Int { inOrder.count + outOfOrder.count }

    mutating func insert(at: Instant, key: Key) {
        let item = Item(at: at, key: key)
        if let last = inOrder.last, at < last.at {
            outOfOrder.insert(item)
        } else {
            inOrder.append(item)
        }
    }

    /// The earliest item.
    var first: Item? {
        guard let ordered = inOrder.first else { return outOfOrder.min }
        guard let unordered = outOfOrder.min else { return ordered }
        return unordered.at < ordered.at ? unordered : ordered
    }

    /// Removes the items `isRemoved` says so of, keeping the order of the rest.
    mutating func removeAll(where isRemoved: (Item) -> Bool) {
        inOrder.removeAll(where: isRemoved)
        outOfOrder = Heap(outOfOrder.unordered.filter { !isRemoved($0) })
    }

    /// Removes and returns the earliest item.
    @discardableResult
    mutating func removeFirst() -> Item? {
        guard let ordered = inOrder.first else { return outOfOrder.popMin() }
        if let unordered = outOfOrder.min, unordered.at < ordered.at { return outOfOrder.popMin() }
        return inOrder.removeFirst()
    }
}
