import CZlib

/// Where a dataset's elements live: in the header, in one extent, or in chunks found through an index.
enum HDF5Layout {
    case compact(UnsafeRawBufferPointer)
    case contiguous(address: Int?, size: Int)
    case chunked(dims: [Int], index: HDF5ChunkIndex, filters: [HDF5Filter])
}

enum HDF5ChunkIndex {
    case btree1(Int?)
    case single(Int?, filteredSize: Int?, mask: UInt32)
    case implicit(Int?)
    case fixedArray(Int?)
}

struct HDF5Filter {
    let id: Int
    let values: [Int]
}

/// One dataset (or attribute) as stored: its element type, shape and layout.
struct HDF5Storage {
    let reader: HDF5Reader
    let type: HDF5Type
    let elementSize: Int
    let shape: [Int]
    let layout: HDF5Layout
    let at: Int
    /// The bytes of one element that unwritten storage reads as, when the file sets a fill value
    /// other than zero.
    let fill: [UInt8]?

    init(_ reader: HDF5Reader, header: HDF5ObjectHeader) throws {
        self.reader = reader
        at = header.address
        guard let typeMessage = header.first(0x3) else { throw reader.error(at, "object header", "a dataset without a datatype message") }
        var c = HDF5Cursor(reader, typeMessage.body, at: typeMessage.offset, what: "datatype")
        (type, elementSize) = try HDF5Type.parse(reader, &c)
        guard let spaceMessage = header.first(0x1) else { throw reader.error(at, "object header", "a dataset without a dataspace message") }
        var s = HDF5Cursor(reader, spaceMessage.body, at: spaceMessage.offset, what: "dataspace")
        shape = try HDF5Dataspace.parse(reader, &s) ?? [0]
        var filters: [HDF5Filter] = []
        if let pipeline = header.first(0xB) { filters = try HDF5Storage.parseFilters(reader, pipeline) }
        guard let layoutMessage = header.first(0x8) else { throw reader.error(at, "object header", "a dataset without a layout message") }
        layout = try HDF5Storage.parseLayout(reader, layoutMessage, rank: shape.count, filters: filters)
        // Strings keep the zero fill (empty strings): a variable-length fill value would be a
        // heap reference, which nothing Keras writes uses.
        if case .variableString = type { fill = nil } else { fill = try HDF5Storage.parseFill(reader, header, elementSize: elementSize) }
    }

    /// The fill value (message 0x5, or the old message 0x4); nil when absent or all zero bytes.
    static func parseFill(_ reader: HDF5Reader, _ header: HDF5ObjectHeader, elementSize: Int) throws -> [UInt8]? {
        var bytes: UnsafeRawBufferPointer?
        if let m = header.first(0x5) {
            var c = HDF5Cursor(reader, m.body, at: m.offset, what: "fill value message")
            let version = try c.u8()
            switch version {
            case 1, 2:
                try c.skip(2)
                let defined = try c.u8()
                if version == 1 || defined != 0, c.remaining >= 4 { bytes = try c.bytes(try c.u32()) }
            case 3:
                let flags = try c.u8()
                if flags & 0x20 != 0 { bytes = try c.bytes(try c.u32()) }
            default: throw c.fail("version \(version) is not supported (expected 1, 2 or 3)")
            }
        } else if let m = header.first(0x4) {
            var c = HDF5Cursor(reader, m.body, at: m.offset, what: "fill value message")
            bytes = try c.bytes(try c.u32())
        }
        guard let bytes, !bytes.isEmpty, bytes.contains(where: { $0 != 0 }) else { return nil }
        guard bytes.count == elementSize else {
            throw reader.error(header.address, "fill value message", "a \(bytes.count)-byte fill value for \(elementSize)-byte elements")
        }
        return Array(bytes)
    }

    init(_ reader: HDF5Reader, type: HDF5Type, elementSize: Int, shape: [Int], data: UnsafeRawBufferPointer, at: Int) {
        self.reader = reader
        self.type = type
        self.elementSize = elementSize
        self.shape = shape
        self.layout = .compact(data)
        self.at = at
        self.fill = nil
    }

    static func parseFilters(_ reader: HDF5Reader, _ m: HDF5Message) throws -> [HDF5Filter] {
        var c = HDF5Cursor(reader, m.body, at: m.offset, what: "filter pipeline")
        let version = try c.u8()
        let count = Int(try c.u8())
        guard version == 1 || version == 2 else { throw c.fail("version \(version) is not supported (expected 1 or 2)") }
        if version == 1 { try c.skip(6) }
        var filters: [HDF5Filter] = []
        for _ in 0..<count {
            let id = try c.u16()
            let nameLength = version == 1 || id >= 256 ? try c.u16() : 0
            _ = try c.u16()
            let valueCount = try c.u16()
            if version == 1 { try c.skip((nameLength + 7) / 8 * 8) } else { try c.skip(nameLength) }
            var values: [Int] = []
            for _ in 0..<valueCount { values.append(try c.u32()) }
            if version == 1 && valueCount % 2 == 1 { try c.skip(4) }
            let names = [1: "deflate", 2: "shuffle", 3: "fletcher32", 4: "szip", 5: "nbit", 6: "scaleoffset", 32000: "lzf", 32001: "blosc", 32004: "lz4", 32015: "zstd"]
            guard [1, 2, 3].contains(id) else {
                throw c.fail("filter '\(names[id] ?? "#\(id)")' is not supported (only deflate, shuffle and fletcher32)")
            }
            filters.append(HDF5Filter(id: id, values: values))
        }
        return filters
    }

    static func parseLayout(_ reader: HDF5Reader, _ m: HDF5Message, rank: Int, filters: [HDF5Filter]) throws -> HDF5Layout {
        var c = HDF5Cursor(reader, m.body, at: m.offset, what: "data layout")
        let version = try c.u8()
        // Version 5 (HDF5 2.0, what h5py 3.16 writes with libver "latest") is encoded as version 4.
        guard (3...5).contains(version) else { throw c.fail("layout version \(version) is not supported (expected 3, 4 or 5)") }
        let layoutClass = try c.u8()
        switch layoutClass {
        case 0:
            let size = try c.u16()
            return .compact(try c.bytes(size))
        case 1:
            let address = try c.address()
            return .contiguous(address: address, size: try c.length())
        case 2:
            if version == 3 {
                let dimensionality = Int(try c.u8())
                guard dimensionality == rank + 1 else { throw c.fail("chunk rank \(dimensionality - 1) does not match the dataspace rank \(rank)") }
                let address = try c.address()
                var dims: [Int] = []
                for _ in 0..<dimensionality { dims.append(try c.u32()) }
                dims.removeLast()
                guard dims.allSatisfy({ $0 > 0 }) else { throw c.fail("a chunk dimension is 0") }
                return .chunked(dims: dims, index: .btree1(address), filters: filters)
            }
            let flags = try c.u8()
            let dimensionality = Int(try c.u8())
            let width = Int(try c.u8())
            guard dimensionality == rank + 1, (1...8).contains(width) else {
                throw c.fail("chunk rank \(dimensionality - 1) (\(width)-byte sizes) does not match the dataspace rank \(rank)")
            }
            var dims: [Int] = []
            for _ in 0..<dimensionality { dims.append(try c.count(width)) }
            dims.removeLast()
            guard dims.allSatisfy({ $0 > 0 }) else { throw c.fail("a chunk dimension is 0") }
            let indexType = try c.u8()
            switch indexType {
            case 1:
                var filteredSize: Int?
                var mask: UInt32 = 0
                if flags & 0x02 != 0 {
                    filteredSize = try c.length()
                    mask = UInt32(try c.u32())
                }
                return .chunked(dims: dims, index: .single(try c.address(), filteredSize: filteredSize, mask: mask), filters: filters)
            case 2:
                return .chunked(dims: dims, index: .implicit(try c.address()), filters: filters)
            case 3:
                try c.skip(1)
                return .chunked(dims: dims, index: .fixedArray(try c.address()), filters: filters)
            case 4: throw c.fail("chunk index 'extensible array' (a dataset with one unlimited dimension) is not supported")
            case 5: throw c.fail("chunk index 'version 2 B-tree' (a dataset with several unlimited dimensions) is not supported")
            default: throw c.fail("chunk index type \(indexType) is not supported")
            }
        case 3: throw c.fail("layout class 'virtual' is not supported")
        default: throw c.fail("layout class \(layoutClass) is not supported")
        }
    }

    var elementCount: Int { shape.reduce(1) { HDF5Reader.multiply($0, $1) ?? Int.max } }

    /// Calls `body` with runs of consecutive elements in row-major order: the bytes of the run and
    /// the index of its first element. Contiguous and compact data are passed straight from the
    /// mapped file; each chunk is decoded once into scratch memory. Elements no chunk covers are
    /// never passed (they hold the fill value, zero).
    func forEachRun(_ body: (UnsafeRawBufferPointer, Int) throws -> Void) throws {
        let total = try reader.checkedByteCount(shape, elementSize: elementSize, at, "object header")
        switch layout {
        case .compact(let data):
            guard data.count >= total else { throw reader.error(at, "compact data", "holds \(data.count) bytes, the dataset needs \(total)") }
            try body(UnsafeRawBufferPointer(rebasing: data[0..<total]), 0)
        case .contiguous(let address, let size):
            guard let address else { return }
            guard size >= total else { throw reader.error(address, "contiguous data", "holds \(size) bytes, the dataset needs \(total)") }
            try body(try reader.bytes(at: address, count: total, "contiguous data"), 0)
        case .chunked(let dims, let index, let filters):
            let chunkBytes = try reader.checkedByteCount(dims, elementSize: elementSize, at, "object header", subject: "a chunk")
            var seen: Set<[Int]> = []
            try forEachChunk(dims: dims, index: index, chunkBytes: chunkBytes) { offsets, address, storedSize, mask in
                guard offsets.count == shape.count, zip(offsets, shape).allSatisfy({ $0 >= 0 && $0 < $1 }), zip(offsets, dims).allSatisfy({ $0 % $1 == 0 }) else {
                    throw reader.error(address, "chunk", "its offset \(offsets) is not a chunk boundary inside the dataset shape \(shape)")
                }
                guard seen.insert(offsets).inserted else { throw reader.error(address, "chunk", "the chunk at \(offsets) is listed twice") }
                let stored = try reader.bytes(at: address, count: storedSize, "chunk")
                try withDecoded(stored, filters: filters, mask: mask, size: chunkBytes, at: address) { chunk in
                    try copyRuns(chunk, offsets: offsets, dims: dims, body)
                }
            }
        }
    }

    private func copyRuns(_ chunk: UnsafeRawBufferPointer, offsets: [Int], dims: [Int], _ body: (UnsafeRawBufferPointer, Int) throws -> Void) throws {
        let rank = shape.count
        let extent = (0..<rank).map { min(dims[$0], shape[$0] - offsets[$0]) }
        guard !extent.contains(where: { $0 <= 0 }) else { return }
        var index = [Int](repeating: 0, count: rank)
        while true {
            var source = 0, target = 0
            for d in 0..<rank {
                source = source * dims[d] + index[d]
                target = target * shape[d] + offsets[d] + index[d]
            }
            let run = extent[rank - 1] * elementSize
            try body(UnsafeRawBufferPointer(rebasing: chunk[(source * elementSize)..<(source * elementSize + run)]), target)
            var d = rank - 2
            while d >= 0 {
                index[d] += 1
                if index[d] < extent[d] { break }
                index[d] = 0
                d -= 1
            }
            if d < 0 { return }
        }
    }

    /// Every stored chunk: its element offsets, address, stored size and filter mask.
    private func forEachChunk(dims: [Int], index: HDF5ChunkIndex, chunkBytes: Int, _ body: ([Int], Int, Int, UInt32) throws -> Void) throws {
        let grid = zip(shape, dims).map { ($0 + $1 - 1) / $1 }
        func offsets(ofLinear linear: Int) -> [Int] {
            var rest = linear
            var result = [Int](repeating: 0, count: grid.count)
            for d in stride(from: grid.count - 1, through: 0, by: -1) {
                result[d] = (rest % max(grid[d], 1)) * dims[d]
                rest /= max(grid[d], 1)
            }
            return result
        }
        let chunkCount = grid.reduce(1) { HDF5Reader.multiply($0, $1) ?? Int.max }
        switch index {
        case .btree1(let root):
            guard let root else { return }
            var visited: Set<Int> = []
            try walkChunkTree(root, rank: shape.count, depth: 0, visited: &visited, body)
        case .single(let address, let filteredSize, let mask):
            guard let address else { return }
            try body([Int](repeating: 0, count: shape.count), address, filteredSize ?? chunkBytes, mask)
        case .implicit(let address):
            guard let address else { return }
            for i in 0..<chunkCount {
                guard let offset = HDF5Reader.multiply(i, chunkBytes).flatMap({ HDF5Reader.add(address, $0) }) else {
                    throw reader.error(address, "implicit chunk index", "chunk \(i) lies past the end of the file")
                }
                try body(offsets(ofLinear: i), offset, chunkBytes, 0)
            }
        case .fixedArray(let address):
            guard let address else { return }
            var h = HDF5Cursor(reader, try reader.bytes(at: address, count: 12 + reader.lengthSize + reader.offsetSize, "fixed array header"), at: address, what: "fixed array header")
            try h.signature("FAHD")
            try h.skip(1)
            let client = try h.u8()
            let entrySize = Int(try h.u8())
            let pageBits = Int(try h.u8())
            let entries = try h.length()
            guard let block = try h.address() else { return }
            guard entries == chunkCount else { throw h.fail("lists \(entries) chunks, the dataset has \(chunkCount)") }
            guard pageBits < 63, entries <= 1 << pageBits else { throw h.fail("a paged fixed array (\(entries) chunks) is not supported") }
            let filtered = client == 1
            let sizeWidth = entrySize - reader.offsetSize - 4
            guard filtered ? (1...8).contains(sizeWidth) : entrySize == reader.offsetSize else {
                throw h.fail("entries of \(entrySize) bytes do not fit client \(client)")
            }
            guard let length = HDF5Reader.multiply(entries, entrySize).flatMap({ HDF5Reader.add($0, 6 + reader.offsetSize) }) else {
                throw h.fail("its size overflows")
            }
            var c = HDF5Cursor(reader, try reader.bytes(at: block, count: length, "fixed array data block"), at: block, what: "fixed array data block")
            try c.signature("FADB")
            try c.skip(2 + reader.offsetSize)
            for i in 0..<entries {
                let chunk = try c.address()
                var size = chunkBytes
                var mask: UInt32 = 0
                if filtered {
                    size = try c.count(sizeWidth)
                    mask = UInt32(try c.u32())
                }
                if let chunk { try body(offsets(ofLinear: i), chunk, size, mask) }
            }
        }
    }

    private func walkChunkTree(_ address: Int, rank: Int, depth: Int, visited: inout Set<Int>, _ body: ([Int], Int, Int, UInt32) throws -> Void) throws {
        guard depth < HDF5Reader.maxDepth else { throw reader.error(address, "B-tree node", "the B-tree is deeper than \(HDF5Reader.maxDepth) levels") }
        guard visited.insert(address).inserted else { throw reader.error(address, "B-tree node", "is reached twice (a B-tree cycle)") }
        guard visited.count <= HDF5Reader.maxItems else { throw reader.error(address, "B-tree node", "the B-tree has too many nodes") }
        var head = HDF5Cursor(reader, try reader.bytes(at: address, count: 8 + 2 * reader.offsetSize, "B-tree node"), at: address, what: "B-tree node")
        try head.signature("TREE")
        let type = try head.u8()
        let level = Int(try head.u8())
        let entries = try head.u16()
        guard type == 1 else { throw head.fail("node type \(type) in a chunk index (expected 1)") }
        let keySize = 8 + 8 * (rank + 1)
        let length = 8 + 2 * reader.offsetSize + entries * (keySize + reader.offsetSize) + keySize
        var c = HDF5Cursor(reader, try reader.bytes(at: address, count: length, "B-tree node"), at: address, what: "B-tree node")
        try c.skip(8 + 2 * reader.offsetSize)
        for _ in 0..<entries {
            let size = try c.u32()
            let mask = UInt32(try c.u32())
            var offsets: [Int] = []
            for _ in 0...rank { offsets.append(try c.count(8)) }
            offsets.removeLast()
            guard let child = try c.address() else { throw c.fail("a child address is undefined") }
            if level > 0 {
                try walkChunkTree(child, rank: rank, depth: depth + 1, visited: &visited, body)
            } else {
                try body(offsets, child, size, mask)
            }
        }
    }

    /// The chunk's `size` bytes with its filters undone (in reverse order, skipping those the mask
    /// excludes); the inflated size is bounded by the declared chunk size before anything is written.
    private func withDecoded(_ stored: UnsafeRawBufferPointer, filters: [HDF5Filter], mask: UInt32, size: Int, at: Int, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        let active = filters.enumerated().filter { $0.offset >= 32 || mask & (1 << UInt32($0.offset)) == 0 }.map(\.element)
        if active.isEmpty {
            guard stored.count >= size else { throw reader.error(at, "chunk", "holds \(stored.count) bytes, a chunk needs \(size)") }
            return try body(UnsafeRawBufferPointer(rebasing: stored[0..<size]))
        }
        // The last filter applied on writing is undone first, straight from the mapped bytes
        // when it is deflate (the usual case), so the stored chunk is never copied as it is.
        var data: [UInt8] = []
        for (step, filter) in active.reversed().enumerated() {
            if step == 0 && filter.id != 1 { data = Array(stored) }
            switch filter.id {
            case 1:
                let bound = size + 4 * filters.count
                data = step == 0 ? try inflate(stored, bound: bound, at: at) : try data.withUnsafeBytes { try inflate($0, bound: bound, at: at) }
            case 2:
                let width = filter.values.first ?? elementSize
                if width > 1, data.count >= width {
                    let count = data.count / width
                    var out = data
                    for b in 0..<width {
                        for i in 0..<count { out[i * width + b] = data[b * count + i] }
                    }
                    data = out
                }
            case 3:
                guard data.count >= 4 else { throw reader.error(at, "chunk", "too short for its fletcher32 checksum") }
                let payload = data[0..<(data.count - 4)]
                let sum = HDF5Storage.fletcher32(Array(payload))
                let stored = data[(data.count - 4)...].enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << UInt32(8 * $1.offset) }
                guard stored == sum || stored.byteSwapped == sum else {
                    throw reader.error(at, "chunk", "fletcher32 checksum mismatch (stored 0x\(String(stored, radix: 16)), computed 0x\(String(sum, radix: 16)))")
                }
                data.removeLast(4)
            default: break
            }
        }
        guard data.count == size else { throw reader.error(at, "chunk", "decodes to \(data.count) bytes, a chunk is \(size)") }
        try data.withUnsafeBytes { try body($0) }
    }

    static func fletcher32(_ bytes: [UInt8]) -> UInt32 {
        var sum1: UInt32 = 0, sum2: UInt32 = 0
        var i = 0
        while i + 1 < bytes.count {
            sum1 = (sum1 + (UInt32(bytes[i]) << 8 | UInt32(bytes[i + 1]))) % 65535
            sum2 = (sum2 + sum1) % 65535
            i += 2
        }
        if i < bytes.count {
            sum1 = (sum1 + (UInt32(bytes[i]) << 8)) % 65535
            sum2 = (sum2 + sum1) % 65535
        }
        return sum2 << 16 | sum1
    }

    /// A zlib stream inflated to at most `bound` bytes; a stream that would produce more is refused.
    private func inflate(_ input: UnsafeRawBufferPointer, bound: Int, at: Int) throws -> [UInt8] {
        var stream = z_stream()
        guard inflateInit_(&stream, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw reader.error(at, "chunk", "zlib could not start inflating")
        }
        defer { inflateEnd(&stream) }
        guard input.count < Int(UInt32.max), bound < Int(UInt32.max) else { throw reader.error(at, "chunk", "is too large to inflate") }
        var out = [UInt8](repeating: 0, count: bound + 1)
        let (status, produced) = { () -> (Int32, Int) in
            out.withUnsafeMutableBytes { outRaw -> (Int32, Int) in
                // zlib never writes through next_in; its C signature is merely not const.
                stream.next_in = input.baseAddress.map { UnsafeMutablePointer(mutating: $0.assumingMemoryBound(to: Bytef.self)) }
                stream.avail_in = uInt(input.count)
                stream.next_out = outRaw.baseAddress?.assumingMemoryBound(to: Bytef.self)
                stream.avail_out = uInt(outRaw.count)
                let result = CZlib.inflate(&stream, Z_FINISH)
                return (result, outRaw.count - Int(stream.avail_out))
            }
        }()
        guard produced <= bound else { throw reader.error(at, "chunk", "inflates past its declared chunk size of \(bound) bytes") }
        guard status == Z_STREAM_END else {
            let reason = stream.msg.map { String(cString: $0) } ?? "status \(status)"
            throw reader.error(at, "chunk", "the deflate data is corrupt or truncated (\(reason))")
        }
        out.removeLast(out.count - produced)
        return out
    }
}
