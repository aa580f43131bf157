/// Dense storage, what libver v108+ files use for a group of more than 8 links or an object of
/// many attributes: the messages live in a fractal heap, indexed by name in a version 2 B-tree.
/// The subset: a B-tree of depth 0 or 1, a heap whose root is a direct block or an indirect block
/// of direct blocks, no I/O filters on the heap, managed (not huge or tiny) objects.
struct HDF5DenseStorage {
    let reader: HDF5Reader
    let heap: Int
    let tree: Int

    /// The body of every message the B-tree indexes, in the B-tree's (hash) order.
    func messages() throws -> [(UnsafeRawBufferPointer, Int)] {
        let h = try HDF5FractalHeap(reader, at: heap)
        var result: [(UnsafeRawBufferPointer, Int)] = []
        for id in try heapIDs(idLength: h.idLength) {
            result.append(try h.object(id))
        }
        return result
    }

    /// The heap IDs in the name-index B-tree's records (type 5: links; type 8: attributes).
    private func heapIDs(idLength: Int) throws -> [UnsafeRawBufferPointer] {
        let o = reader.offsetSize
        var c = HDF5Cursor(reader, try reader.bytes(at: tree, count: 22 + o + reader.lengthSize, "v2 B-tree header"), at: tree, what: "v2 B-tree header")
        try c.signature("BTHD")
        try c.skip(1)
        let type = try c.u8()
        let nodeSize = try c.u32()
        let recordSize = try c.u16()
        let depth = try c.u16()
        try c.skip(2)
        let root = try c.address()
        let rootRecords = try c.u16()
        let idOffset: Int
        switch type {
        case 5: idOffset = 4
        case 8: idOffset = 0
        default: throw c.fail("record type \(type) is not a name index (expected 5 for links or 8 for attributes)")
        }
        guard idLength > 0, recordSize >= idOffset + idLength, nodeSize > 10 else { throw c.fail("\(recordSize)-byte records cannot hold a \(idLength)-byte heap ID") }
        guard let root else { return [] }
        guard depth <= 1 else { throw c.fail("a v2 B-tree of depth \(depth) (more than about 10,000 members) is not supported") }
        var ids: [UnsafeRawBufferPointer] = []
        func leaf(_ address: Int, _ count: Int, _ signature: String, extra: Int = 0) throws -> HDF5Cursor {
            guard let length = HDF5Reader.multiply(count, recordSize).flatMap({ HDF5Reader.add($0, 6 + extra) }) else { throw c.fail("the node size overflows") }
            var n = HDF5Cursor(reader, try reader.bytes(at: address, count: length, "v2 B-tree node"), at: address, what: "v2 B-tree node")
            try n.signature(signature)
            try n.skip(2)
            for _ in 0..<count {
                let record = try n.bytes(recordSize)
                ids.append(UnsafeRawBufferPointer(rebasing: record[idOffset..<(idOffset + idLength)]))
            }
            return n
        }
        if depth == 0 { _ = try leaf(root, rootRecords, "BTLF"); return ids }
        // An internal root: its records, then one (address, record count) per child leaf; the
        // count's width is the bytes needed for the most records a leaf can hold.
        let leafMax = (nodeSize - 10) / recordSize
        var width = 1
        while leafMax >> (8 * width) > 0 { width += 1 }
        var n = try leaf(root, rootRecords, "BTIN", extra: (rootRecords + 1) * (o + width))
        var children: [(Int, Int)] = []
        for _ in 0...rootRecords {
            guard let child = try n.address() else { throw n.fail("a child address is undefined") }
            children.append((child, try n.count(width)))
        }
        var visited: Set<Int> = [root]
        var all: [UnsafeRawBufferPointer] = []
        let rootIDs = ids
        for (i, (child, count)) in children.enumerated() {
            guard visited.insert(child).inserted else { throw reader.error(child, "v2 B-tree node", "is reached twice (a B-tree cycle)") }
            guard count <= leafMax else { throw reader.error(child, "v2 B-tree node", "claims \(count) records, a leaf holds at most \(leafMax)") }
            ids = []
            _ = try leaf(child, count, "BTLF")
            all += ids
            if i < rootIDs.count { all.append(rootIDs[i]) }
        }
        return all
    }
}

/// A fractal heap's managed objects, found through its doubling table.
struct HDF5FractalHeap {
    let reader: HDF5Reader
    let at: Int
    let idLength: Int
    let offsetBytes: Int
    let lengthBytes: Int
    /// Each direct block: its heap offset, address and size.
    let blocks: [(offset: Int, address: Int, size: Int)]

    init(_ reader: HDF5Reader, at address: Int) throws {
        self.reader = reader
        at = address
        let o = reader.offsetSize, l = reader.lengthSize
        var c = HDF5Cursor(reader, try reader.bytes(at: address, count: 4 + 1 + 2 + 2 + 1 + 4 + l * 12 + o * 3 + 2 + 2 + 2 + 2 + 4, "fractal heap header"), at: address, what: "fractal heap header")
        try c.signature("FRHP")
        try c.skip(1)
        idLength = try c.u16()
        let filterLength = try c.u16()
        guard filterLength == 0 else { throw c.fail("a fractal heap with I/O filters is not supported") }
        try c.skip(1)
        let maxManaged = try c.u32()
        try c.skip(l + o + l + o + l * 8)
        let tableWidth = try c.u16()
        let startSize = try c.length()
        let maxDirect = try c.length()
        let maxHeapBits = try c.u16()
        try c.skip(2)
        let root = try c.address()
        let rows = try c.u16()
        guard tableWidth > 0, tableWidth <= 1 << 16, startSize > 0, maxDirect >= startSize, (1...64).contains(maxHeapBits) else {
            throw c.fail("a doubling table of width \(tableWidth), blocks \(startSize)...\(maxDirect) bytes is not valid")
        }
        offsetBytes = (maxHeapBits + 7) / 8
        func encodedSize(_ n: Int) -> Int { var w = 1; while n >> (8 * w) > 0 && w < 8 { w += 1 }; return w }
        lengthBytes = min(encodedSize(maxDirect), encodedSize(maxManaged))
        guard 1 + offsetBytes + lengthBytes <= idLength else { throw c.fail("heap IDs of \(idLength) bytes cannot hold a \(offsetBytes)-byte offset and \(lengthBytes)-byte length") }
        var blocks: [(offset: Int, address: Int, size: Int)] = []
        if let root {
            if rows == 0 {
                blocks.append((0, root, startSize))
            } else {
                // Row r holds tableWidth blocks of startSize × 2^max(r-1, 0) bytes; rows past the
                // largest direct block size hold indirect blocks, which are refused.
                var size = startSize
                var directRows = 0
                while size <= maxDirect && directRows < 64 { directRows += 1; size = directRows < 2 ? startSize : size * 2 }
                guard rows <= directRows else { throw c.fail("a fractal heap with nested indirect blocks (\(rows) rows) is not supported") }
                guard let entries = HDF5Reader.multiply(rows, tableWidth), entries <= HDF5Reader.maxItems else { throw c.fail("\(rows) rows is too many") }
                var k = HDF5Cursor(reader, try reader.bytes(at: root, count: 5 + o + offsetBytes + entries * o, "fractal heap indirect block"), at: root, what: "fractal heap indirect block")
                try k.signature("FHIB")
                try k.skip(1 + o + offsetBytes)
                var offset = 0
                for r in 0..<rows {
                    let blockSize = r < 2 ? startSize : startSize << (r - 1)
                    for _ in 0..<tableWidth {
                        if let block = try k.address() { blocks.append((offset, block, blockSize)) }
                        guard let next = HDF5Reader.add(offset, blockSize) else { throw k.fail("heap offsets overflow") }
                        offset = next
                    }
                }
            }
        }
        self.blocks = blocks
    }

    /// The managed object a heap ID names, with its absolute offset.
    func object(_ id: UnsafeRawBufferPointer) throws -> (UnsafeRawBufferPointer, Int) {
        var c = HDF5Cursor(reader, id, at: at, what: "fractal heap ID")
        let flags = try c.u8()
        guard flags & 0xc0 == 0 else { throw c.fail("heap ID version \(flags >> 6) is not supported") }
        guard flags & 0x30 == 0 else { throw c.fail("a \((flags >> 4) & 3 == 1 ? "huge" : "tiny") heap object is not supported") }
        let offset = try c.count(offsetBytes)
        let length = try c.count(lengthBytes)
        guard let block = blocks.first(where: { offset >= $0.offset && offset - $0.offset < $0.size }) else {
            throw c.fail("heap offset \(offset) is in no direct block")
        }
        let within = offset - block.offset
        guard length <= block.size - within else { throw c.fail("the object at heap offset \(offset) (\(length) bytes) runs past its direct block") }
        let start = block.address + within
        return (try reader.bytes(at: start, count: length, "fractal heap object"), start)
    }
}
