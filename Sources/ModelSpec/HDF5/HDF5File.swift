#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An HDF5 file opened read-only through a mapped view, for the subset h5py writes for Keras:
/// superblock 0, 2 and 3; object headers 1 and 2; symbol-table and compact link-message groups;
/// contiguous, compact and chunked datasets (B-tree v1, single-chunk, implicit and fixed-array
/// indexes) with deflate, shuffle and fletcher32; IEEE floats, integers and strings; attributes.
/// Anything else is refused with an `NNError` naming the feature and its file offset.
public final class HDF5File: @unchecked Sendable {
    let reader: HDF5Reader

    /// Maps the regular file at `path` read-only (special files are refused).
    public init(path: String) throws {
        reader = try HDF5Reader(file: try MappedFile(path: path), source: path)
    }

    /// Reads `file`'s bytes in place (a view of a stored zip member).
    init(file: MappedFile, source: String) throws {
        reader = try HDF5Reader(file: file, source: source)
    }

    public init(bytes: [UInt8], source: String) throws {
        reader = try HDF5Reader(file: try MappedFile(copying: bytes, source: source), source: source)
    }

    /// The root group, "/".
    public var root: HDF5Group {
        get throws { HDF5Group(file: self, path: "/", address: reader.rootAddress) }
    }
}

/// A group: its members are links to groups and datasets.
public struct HDF5Group {
    let file: HDF5File
    public let path: String
    let address: Int

    var reader: HDF5Reader { file.reader }

    /// The members' names. Symbol-table groups (what h5py writes by default) and link-message
    /// groups without tracked creation order list them in name order (byte-wise, as HDF5 does);
    /// groups that track creation order list them in creation order.
    public func memberNames() throws -> [String] { try links().map(\.name) }

    public func group(_ name: String) throws -> HDF5Group {
        let (target, full) = try resolve(name)
        guard try HDF5Group.isGroupHeader(try reader.header(at: target)) else {
            throw NNError(.weights, reader.source, "HDF5: '\(full)' is a dataset, expected a group")
        }
        return HDF5Group(file: file, path: full, address: target)
    }

    public func dataset(_ name: String) throws -> HDF5Dataset {
        let (target, full) = try resolve(name)
        let header = try reader.header(at: target)
        guard header.first(0x8) != nil else {
            throw NNError(.weights, reader.source, "HDF5: '\(full)' is a group, expected a dataset")
        }
        return try HDF5Dataset(file: file, path: full, storage: try HDF5Storage(reader, header: header))
    }

    public func isGroup(_ name: String) throws -> Bool {
        try HDF5Group.isGroupHeader(try reader.header(at: try resolve(name).0))
    }

    public func attribute(_ name: String) throws -> HDF5Value? {
        guard let storage = try HDF5Attributes.all(reader, try reader.header(at: address)).first(where: { $0.0 == name })?.1 else { return nil }
        return try HDF5Values.value(storage)
    }

    /// The attributes' names, in the order the object header (or, for more than 8 attributes in
    /// libver v108+ files, the dense storage's name-hash index) holds them.
    public func attributeNames() throws -> [String] {
        try HDF5Attributes.all(reader, try reader.header(at: address)).map(\.0)
    }

    static func isGroupHeader(_ header: HDF5ObjectHeader) throws -> Bool {
        header.first(0x11) != nil || header.first(0x2) != nil || (header.first(0x8) == nil && header.first(0x6) != nil)
    }

    private func child(_ name: String) -> String { path == "/" ? "/" + name : path + "/" + name }

    /// The object a member name (or a relative path "a/b") links to.
    private func resolve(_ name: String) throws -> (Int, String) {
        let parts = name.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        guard !parts.isEmpty, parts.count <= HDF5Reader.maxDepth else {
            throw NNError(.weights, reader.source, "HDF5: '\(name)' is not a member name")
        }
        var group = self
        var target = address
        for (i, part) in parts.enumerated() {
            guard let link = try group.links().first(where: { $0.name == part }) else {
                let names = try group.links().map(\.name)
                throw NNError(.weights, reader.source, "HDF5: group '\(group.path)' has no member '\(part)' (members: \(names.prefix(20).joined(separator: ", "))\(names.count > 20 ? ", ..." : ""))")
            }
            guard let address = link.address else {
                throw NNError(.weights, reader.source, "HDF5: '\(group.child(part))' is a soft or external link, which is not supported")
            }
            target = address
            if i < parts.count - 1 { group = HDF5Group(file: file, path: group.child(part), address: address) }
        }
        return (target, group.child(parts[parts.count - 1]))
    }

    struct Link { let name: String; let address: Int?; let order: Int? }

    func links() throws -> [Link] {
        try reader.links(at: address) { try parseLinks() }
    }

    private func parseLinks() throws -> [Link] {
        let header = try reader.header(at: address)
        if let table = header.first(0x11) {
            var c = HDF5Cursor(reader, table.body, at: table.offset, what: "symbol table message")
            guard let tree = try c.address(), let heap = try c.address() else { return [] }
            let names = try HDF5LocalHeap(reader, at: heap)
            var links: [Link] = []
            var visited: Set<Int> = []
            try walkGroupTree(tree, names: names, depth: 0, visited: &visited, into: &links)
            return links
        }
        var tracked = false
        if let info = header.first(0x2) {
            var c = HDF5Cursor(reader, info.body, at: info.offset, what: "link info message")
            try c.skip(1)
            let flags = try c.u8()
            tracked = flags & 1 != 0
            if flags & 1 != 0 { try c.skip(8) }
            if let heap = try c.address() {
                guard let tree = try c.address() else { throw c.fail("dense link storage without a name index") }
                var links: [Link] = []
                for (body, offset) in try HDF5DenseStorage(reader: reader, heap: heap, tree: tree).messages() {
                    links.append(try HDF5Group.parseLink(reader, HDF5Message(type: 0x6, flags: 0, creationOrder: nil, body: body, offset: offset)))
                }
                return HDF5Group.ordered(links, tracked: tracked)
            }
        }
        var links: [Link] = []
        for m in header.messages where m.type == 0x6 {
            links.append(try HDF5Group.parseLink(reader, m))
        }
        return HDF5Group.ordered(links, tracked: tracked)
    }

    static func ordered(_ links: [Link], tracked: Bool) -> [Link] {
        if tracked, links.allSatisfy({ $0.order != nil }) {
            return links.sorted { ($0.order ?? 0) < ($1.order ?? 0) }
        }
        return links.sorted { Array($0.name.utf8).lexicographicallyPrecedes(Array($1.name.utf8)) }
    }

    static func parseLink(_ reader: HDF5Reader, _ m: HDF5Message) throws -> Link {
        var c = HDF5Cursor(reader, m.body, at: m.offset, what: "link message")
        let version = try c.u8()
        guard version == 1 else { throw c.fail("version \(version) is not supported (expected 1)") }
        let flags = try c.u8()
        let type = flags & 0x08 != 0 ? try c.u8() : 0
        let order = flags & 0x04 != 0 ? try c.count(8) : nil
        if flags & 0x10 != 0 { try c.skip(1) }
        let nameLength = try c.count(1 << Int(flags & 3))
        let name = String(decoding: try c.bytes(nameLength), as: UTF8.self)
        guard type == 0 else { return Link(name: name, address: nil, order: order) }
        guard let target = try c.address() else { throw c.fail("link '\(name)' has an undefined address") }
        return Link(name: name, address: target, order: order)
    }

    private func walkGroupTree(_ node: Int, names: HDF5LocalHeap, depth: Int, visited: inout Set<Int>, into links: inout [Link]) throws {
        guard depth < HDF5Reader.maxDepth else { throw reader.error(node, "B-tree node", "the B-tree is deeper than \(HDF5Reader.maxDepth) levels") }
        guard visited.insert(node).inserted else { throw reader.error(node, "B-tree node", "is reached twice (a B-tree cycle)") }
        guard visited.count <= HDF5Reader.maxItems else { throw reader.error(node, "B-tree node", "the group's B-tree has too many nodes") }
        var head = HDF5Cursor(reader, try reader.bytes(at: node, count: 8 + 2 * reader.offsetSize, "B-tree node"), at: node, what: "B-tree node")
        try head.signature("TREE")
        let type = try head.u8()
        let level = Int(try head.u8())
        let entries = try head.u16()
        guard type == 0 else { throw head.fail("node type \(type) in a group (expected 0)") }
        let length = 8 + 2 * reader.offsetSize + entries * (reader.lengthSize + reader.offsetSize) + reader.lengthSize
        var c = HDF5Cursor(reader, try reader.bytes(at: node, count: length, "B-tree node"), at: node, what: "B-tree node")
        try c.skip(8 + 2 * reader.offsetSize)
        for _ in 0..<entries {
            try c.skip(reader.lengthSize)
            guard let child = try c.address() else { throw c.fail("a child address is undefined") }
            if level > 0 {
                try walkGroupTree(child, names: names, depth: depth + 1, visited: &visited, into: &links)
                continue
            }
            guard visited.insert(child).inserted else { throw reader.error(child, "symbol table node", "is reached twice (a B-tree cycle)") }
            var s = HDF5Cursor(reader, try reader.bytes(at: child, count: 8, "symbol table node"), at: child, what: "symbol table node")
            try s.signature("SNOD")
            try s.skip(2)
            let symbols = try s.u16()
            let entrySize = 2 * reader.offsetSize + 24
            var e = HDF5Cursor(reader, try reader.bytes(at: child + 8, count: symbols * entrySize, "symbol table node"), at: child, what: "symbol table node")
            for _ in 0..<symbols {
                let nameOffset = try e.count(reader.offsetSize)
                let target = try e.address()
                try e.skip(24)
                links.append(Link(name: try names.string(at: nameOffset), address: target, order: nil))
                guard links.count <= HDF5Reader.maxItems else { throw e.fail("the group has too many members") }
            }
        }
    }
}

/// A local heap: the names of a symbol-table group's members.
struct HDF5LocalHeap {
    let data: UnsafeRawBufferPointer
    let at: Int
    let reader: HDF5Reader

    init(_ reader: HDF5Reader, at address: Int) throws {
        var c = HDF5Cursor(reader, try reader.bytes(at: address, count: 8 + 2 * reader.lengthSize + reader.offsetSize, "local heap"), at: address, what: "local heap")
        try c.signature("HEAP")
        try c.skip(4)
        let size = try c.length()
        try c.skip(reader.lengthSize)
        guard let start = try c.address() else { throw c.fail("the data segment's address is undefined") }
        data = try reader.bytes(at: start, count: size, "local heap data")
        at = address
        self.reader = reader
    }

    func string(at offset: Int) throws -> String {
        guard offset >= 0, offset < data.count else {
            throw reader.error(at, "local heap", "name offset \(offset) is past its \(data.count)-byte data segment")
        }
        let rest = data[offset...]
        guard let end = rest.firstIndex(of: 0) else { throw reader.error(at, "local heap", "the name at offset \(offset) has no terminating NUL") }
        return String(decoding: UnsafeRawBufferPointer(rebasing: data[offset..<end]), as: UTF8.self)
    }
}

enum HDF5Attributes {
    static func all(_ reader: HDF5Reader, _ header: HDF5ObjectHeader) throws -> [(String, HDF5Storage)] {
        var bodies = header.messages.filter { $0.type == 0xC }.map { ($0.body, $0.offset) }
        if let info = header.first(0x15) {
            var c = HDF5Cursor(reader, info.body, at: info.offset, what: "attribute info message")
            try c.skip(1)
            let flags = try c.u8()
            if flags & 1 != 0 { try c.skip(2) }
            // Dense attribute storage: more than 8 attributes, or one over 64 kB, in libver v108+ files.
            if let heap = try c.address() {
                guard let tree = try c.address() else { throw c.fail("dense attribute storage without a name index") }
                bodies += try HDF5DenseStorage(reader: reader, heap: heap, tree: tree).messages()
            }
        }
        var result: [(String, HDF5Storage)] = []
        for (body, offset) in bodies {
            var c = HDF5Cursor(reader, body, at: offset, what: "attribute message")
            let version = try c.u8()
            guard (1...3).contains(version) else { throw c.fail("version \(version) is not supported (expected 1, 2 or 3)") }
            let flags = try c.u8()
            guard flags & 0x03 == 0 || version == 1 else { throw c.fail("a shared datatype or dataspace is not supported") }
            let nameSize = try c.u16(), typeSize = try c.u16(), spaceSize = try c.u16()
            if version == 3 { try c.skip(1) }
            let pad = { (n: Int) in version == 1 ? (n + 7) / 8 * 8 : n }
            let nameBytes = try c.bytes(pad(nameSize))
            let name = String(decoding: nameBytes.prefix(while: { $0 != 0 }), as: UTF8.self)
            var t = HDF5Cursor(reader, try c.bytes(pad(typeSize)), at: c.absolute, what: "attribute '\(name)' datatype")
            let (type, elementSize) = try HDF5Type.parse(reader, &t)
            var s = HDF5Cursor(reader, try c.bytes(pad(spaceSize)), at: c.absolute, what: "attribute '\(name)' dataspace")
            let shape = try HDF5Dataspace.parse(reader, &s) ?? [0]
            let at = c.absolute
            let total = try reader.checkedByteCount(shape, elementSize: elementSize, at, "attribute message", subject: "attribute '\(name)'")
            let data = try c.bytes(total)
            result.append((name, HDF5Storage(reader, type: type, elementSize: elementSize, shape: shape, data: data, at: at)))
        }
        return result
    }
}
