internal import CRabbitMQ
import Glibc

/// Owns the C memory that describes one outgoing call (names, tables, properties) until the call
/// returns.
///
/// rabbitmq-c reads `amqp_bytes_t` and tables only during the call that receives them (it encodes
/// them into its own buffer), so everything allocated here is freed by `deinit` right after.
/// Used only on the connection thread; never shared.
final class CArena {
    /// The blocks taken from malloc, newest first: each begins with the address of the one
    /// before it. A publish used to cost a malloc per name and header; now they share a block
    /// (a value over a quarter of a block gets one of its own).
    private var newestBlock: UnsafeMutableRawPointer?
    /// Where the next small allocation starts, in the block being filled, and the room left there.
    private var cursor: UnsafeMutableRawPointer?
    private var room = 0

    private static let blockSize = 2048
    /// Room for the link to the previous block; 16 keeps what follows aligned as malloc's memory is.
    private static let linkSize = 16

    deinit {
        var block = newestBlock
        while let current = block {
            block = current.load(as: UnsafeMutableRawPointer?.self)
            free(current)
        }
    }

    private func newBlock(_ size: Int) -> UnsafeMutableRawPointer {
        guard let block = malloc(Self.linkSize + size) else { fatalError("out of memory") }
        block.storeBytes(of: newestBlock, as: UnsafeMutableRawPointer?.self)
        newestBlock = block
        return block + Self.linkSize
    }

    /// `size` bytes, 16-byte aligned (C tables and field values need 8), valid until the arena goes.
    private func allocate(_ size: Int) -> UnsafeMutableRawPointer {
        let size = (max(size, 1) + 15) & ~15
        // A large value gets a block of its own, and the block being filled keeps its room.
        if size > Self.blockSize / 4 { return newBlock(size) }
        if size > room {
            cursor = newBlock(Self.blockSize)
            room = Self.blockSize
        }
        // Safe: `cursor` was set with at least `size` bytes of room, checked just above.
        let pointer = cursor.unsafelyUnwrapped
        cursor = pointer + size
        room -= size
        return pointer
    }

    /// A copy of `string`'s UTF-8 bytes (not NUL-terminated) valid until the arena goes.
    func bytes(_ string: String) -> amqp_bytes_t {
        var string = string
        return string.withUTF8 { bytes($0) }
    }

    /// A copy of `buffer` valid until the arena goes.
    func bytes(_ buffer: UnsafeBufferPointer<UInt8>) -> amqp_bytes_t {
        guard buffer.count > 0, let base = buffer.baseAddress else { return amqp_bytes_t(len: 0, bytes: nil) }
        let pointer = allocate(buffer.count)
        // Safe: the destination was just allocated with exactly `count` bytes.
        pointer.copyMemory(from: base, byteCount: buffer.count)
        return amqp_bytes_t(len: buffer.count, bytes: pointer)
    }

    /// A copy of `array` valid until the arena goes.
    func bytes(_ array: [UInt8]) -> amqp_bytes_t {
        array.withUnsafeBufferPointer { bytes($0) }
    }

    /// A C field table with the same entries (sorted by key, for a stable wire form).
    func table(_ table: AMQPTable) -> amqp_table_t {
        guard !table.isEmpty else { return amqp_table_t(num_entries: 0, entries: nil) }
        let count = table.count
        let entries = allocate(MemoryLayout<amqp_table_entry_t>.stride * count)
            .bindMemory(to: amqp_table_entry_t.self, capacity: count)
        // Safe: `entries` holds exactly `count` entries, each initialized once below.
        for (index, (key, value)) in table.sorted(by: { $0.key < $1.key }).enumerated() {
            (entries + index).initialize(to: amqp_table_entry_t(key: bytes(key), value: field(value)))
        }
        return amqp_table_t(num_entries: Int32(count), entries: entries)
    }

    private func field(_ value: AMQPFieldValue) -> amqp_field_value_t {
        var field = amqp_field_value_t()
        switch value {
        case .string(let string):
            field.kind = UInt8(AMQP_FIELD_KIND_UTF8.rawValue)
            field.value.bytes = bytes(string)
        case .int(let int):
            field.kind = UInt8(AMQP_FIELD_KIND_I64.rawValue)
            field.value.i64 = int
        case .bool(let bool):
            field.kind = UInt8(AMQP_FIELD_KIND_BOOLEAN.rawValue)
            field.value.boolean = bool ? 1 : 0
        case .double(let double):
            field.kind = UInt8(AMQP_FIELD_KIND_F64.rawValue)
            field.value.f64 = double
        case .table(let nested):
            field.kind = UInt8(AMQP_FIELD_KIND_TABLE.rawValue)
            field.value.table = table(nested)
        case .array(let items):
            field.kind = UInt8(AMQP_FIELD_KIND_ARRAY.rawValue)
            if items.isEmpty {
                field.value.array = amqp_array_t(num_entries: 0, entries: nil)
            } else {
                let values = allocate(MemoryLayout<amqp_field_value_t>.stride * items.count)
                    .bindMemory(to: amqp_field_value_t.self, capacity: items.count)
                // Safe: `values` holds exactly `items.count` values, each initialized once.
                for (index, item) in items.enumerated() { (values + index).initialize(to: self.field(item)) }
                field.value.array = amqp_array_t(num_entries: Int32(items.count), entries: values)
            }
        case .bytes(let data):
            field.kind = UInt8(AMQP_FIELD_KIND_BYTES.rawValue)
            field.value.bytes = bytes(data)
        }
        return field
    }

    /// C basic properties for `properties`, pointing into this arena.
    func properties(_ properties: AMQPProperties) -> amqp_basic_properties_t {
        var c = amqp_basic_properties_t()
        var flags: UInt32 = 0
        func set(_ value: String?, _ flag: Int32, _ keyPath: WritableKeyPath<amqp_basic_properties_t, amqp_bytes_t>) {
            guard let value else { return }
            c[keyPath: keyPath] = bytes(value)
            flags |= UInt32(flag)
        }
        set(properties.contentType, AMQP_BASIC_CONTENT_TYPE_FLAG, \.content_type)
        set(properties.contentEncoding, AMQP_BASIC_CONTENT_ENCODING_FLAG, \.content_encoding)
        set(properties.messageID, AMQP_BASIC_MESSAGE_ID_FLAG, \.message_id)
        set(properties.correlationID, AMQP_BASIC_CORRELATION_ID_FLAG, \.correlation_id)
        set(properties.replyTo, AMQP_BASIC_REPLY_TO_FLAG, \.reply_to)
        set(properties.type, AMQP_BASIC_TYPE_FLAG, \.type)
        set(properties.appID, AMQP_BASIC_APP_ID_FLAG, \.app_id)
        set(properties.expiration, AMQP_BASIC_EXPIRATION_FLAG, \.expiration)
        c.delivery_mode = properties.persistent ? 2 : 1
        flags |= UInt32(AMQP_BASIC_DELIVERY_MODE_FLAG)
        if let priority = properties.priority {
            c.priority = priority
            flags |= UInt32(AMQP_BASIC_PRIORITY_FLAG)
        }
        if let timestamp = properties.timestamp {
            c.timestamp = timestamp
            flags |= UInt32(AMQP_BASIC_TIMESTAMP_FLAG)
        }
        if !properties.headers.isEmpty {
            c.headers = table(properties.headers)
            flags |= UInt32(AMQP_BASIC_HEADERS_FLAG)
        }
        c._flags = flags
        return c
    }
}

// MARK: - Reading C values (library-owned memory, copied into Swift values at once)

extension amqp_bytes_t {
    /// A Swift copy of these bytes as text (invalid UTF-8 is repaired).
    var string: String {
        guard len > 0, let bytes else { return "" }
        // Safe: rabbitmq-c guarantees `len` readable bytes at `bytes` until buffers are released,
        // and the String initializer copies them.
        return String(decoding: UnsafeRawBufferPointer(start: bytes, count: len), as: UTF8.self)
    }

    /// A Swift copy of these bytes.
    var array: [UInt8] {
        guard len > 0, let bytes else { return [] }
        // Safe: as above; the Array initializer copies.
        return Array(UnsafeRawBufferPointer(start: bytes, count: len))
    }
}

extension amqp_table_t {
    /// A Swift copy of this table. Entries of kinds Swift has no case for (void) are left out.
    var swiftTable: AMQPTable {
        var result: AMQPTable = [:]
        guard num_entries > 0, let entries else { return result }
        for index in 0..<Int(num_entries) {
            // Safe: `entries` holds `num_entries` entries owned by the library during this call.
            let entry = entries[index]
            if let value = entry.value.swiftValue { result[entry.key.string] = value }
        }
        return result
    }
}

extension amqp_field_value_t {
    /// A Swift copy of this value, or nil for kinds without a Swift case.
    var swiftValue: AMQPFieldValue? {
        switch UInt32(kind) {
        case AMQP_FIELD_KIND_BOOLEAN.rawValue: .bool(value.boolean != 0)
        case AMQP_FIELD_KIND_I8.rawValue: .int(Int64(value.i8))
        case AMQP_FIELD_KIND_U8.rawValue: .int(Int64(value.u8))
        case AMQP_FIELD_KIND_I16.rawValue: .int(Int64(value.i16))
        case AMQP_FIELD_KIND_U16.rawValue: .int(Int64(value.u16))
        case AMQP_FIELD_KIND_I32.rawValue: .int(Int64(value.i32))
        case AMQP_FIELD_KIND_U32.rawValue: .int(Int64(value.u32))
        case AMQP_FIELD_KIND_I64.rawValue: .int(value.i64)
        case AMQP_FIELD_KIND_U64.rawValue, AMQP_FIELD_KIND_TIMESTAMP.rawValue: .int(Int64(truncatingIfNeeded: value.u64))
        case AMQP_FIELD_KIND_F32.rawValue: .double(Double(value.f32))
        case AMQP_FIELD_KIND_F64.rawValue: .double(value.f64)
        case AMQP_FIELD_KIND_DECIMAL.rawValue:
            .double(Double(value.decimal.value) / pow(10, Double(value.decimal.decimals)))
        case AMQP_FIELD_KIND_UTF8.rawValue: .string(value.bytes.string)
        case AMQP_FIELD_KIND_BYTES.rawValue: .bytes(value.bytes.array)
        case AMQP_FIELD_KIND_TABLE.rawValue: .table(value.table.swiftTable)
        case AMQP_FIELD_KIND_ARRAY.rawValue:
            {
                var items: [AMQPFieldValue] = []
                let array = value.array
                guard array.num_entries > 0, let entries = array.entries else { return .array(items) }
                for index in 0..<Int(array.num_entries) {
                    // Safe: `entries` holds `num_entries` values owned by the library during this call.
                    if let item = entries[index].swiftValue { items.append(item) }
                }
                return .array(items)
            }()
        default: nil
        }
    }
}

extension amqp_basic_properties_t {
    /// A Swift copy of these properties.
    var swiftProperties: AMQPProperties {
        func has(_ flag: Int32) -> Bool { _flags & UInt32(flag) != 0 }
        var result = AMQPProperties()
        if has(AMQP_BASIC_CONTENT_TYPE_FLAG) { result.contentType = content_type.string }
        if has(AMQP_BASIC_CONTENT_ENCODING_FLAG) { result.contentEncoding = content_encoding.string }
        if has(AMQP_BASIC_MESSAGE_ID_FLAG) { result.messageID = message_id.string }
        if has(AMQP_BASIC_CORRELATION_ID_FLAG) { result.correlationID = correlation_id.string }
        if has(AMQP_BASIC_REPLY_TO_FLAG) { result.replyTo = reply_to.string }
        if has(AMQP_BASIC_TYPE_FLAG) { result.type = type.string }
        if has(AMQP_BASIC_APP_ID_FLAG) { result.appID = app_id.string }
        if has(AMQP_BASIC_EXPIRATION_FLAG) { result.expiration = expiration.string }
        if has(AMQP_BASIC_DELIVERY_MODE_FLAG) { result.persistent = delivery_mode == 2 }
        if has(AMQP_BASIC_PRIORITY_FLAG) { result.priority = priority }
        if has(AMQP_BASIC_TIMESTAMP_FLAG) { result.timestamp = timestamp }
        if has(AMQP_BASIC_HEADERS_FLAG) { result.headers = headers.swiftTable }
        return result
    }
}
