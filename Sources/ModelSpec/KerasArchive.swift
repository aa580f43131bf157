import CZlib
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A whole Keras model file: a Keras 3 archive (`model.save("m.keras")`, a zip holding
/// `config.json` and `model.weights.h5`) or a legacy HDF5 model (`model.save("m.h5")`, whose
/// `model_config` attribute is the architecture). Told apart by content, not by extension.
public enum ModelFile {
    /// The description and weights of the model file at `path`.
    public static func load(path: String) throws -> (ModelDescription, WeightStore) {
        let file = try MappedFile(path: path)
        switch FileKind.detect(file.bytes.prefix(8)) {
        case .kerasArchive: return try loadArchive(file, path: path)
        case .hdf5: return try LegacyH5.load(try HDF5File(path: path), path: path)
        default:
            throw NNError(.spec, path, "expected a Keras model file (.keras, a zip archive, or a legacy .h5, an HDF5 file); the file starts with neither signature")
        }
    }

    /// The weights at `path` for a model described elsewhere: a safetensors blob, or a Keras
    /// weights file (`model.save_weights("m.weights.h5")`, Keras 3 or legacy).
    public static func weights(path: String) throws -> WeightStore {
        let file = try MappedFile(path: path)
        switch FileKind.detect(file.bytes.prefix(8)) {
        case .hdf5:
            let h5 = try HDF5File(path: path)
            let root = try h5.root
            if try root.attribute("layer_names") != nil { return try LegacyH5.weights(root, source: path) }
            if try root.attribute("model_config") != nil {
                throw NNError(.weights, path, "this is a whole Keras model (.h5), not a weights file; pass it alone in place of the spec and weights")
            }
            return try KerasSaving.store(h5, source: path)
        case .kerasArchive:
            throw NNError(.weights, path, "this is a whole Keras model archive (.keras), not a weights file; pass it alone in place of the spec and weights (`nnbuild infer \(path) --input x.npy`)")
        default:
            return try WeightStore(path: path)
        }
    }

    /// True when the file at `path` starts as a Keras model file does (zip or HDF5 signature).
    public static func isModelFile(path: String) -> Bool {
        guard let file = try? MappedFile(path: path) else { return false }
        let kind = FileKind.detect(file.bytes.prefix(8))
        return kind == .kerasArchive || kind == .hdf5
    }

    /// Keras's config of the model file at `path`, verbatim (`config.json`, or `model_config`).
    public static func configText(path: String) throws -> [UInt8] {
        let file = try MappedFile(path: path)
        switch FileKind.detect(file.bytes.prefix(8)) {
        case .kerasArchive:
            let archive = try ZipArchive(bytes: file.bytes, source: path, kind: .spec)
            return try member("config.json", of: archive, path: path)
        case .hdf5:
            return Array(try LegacyH5.modelConfig(try HDF5File(path: path), path: path).utf8)
        default:
            throw NNError(.spec, path, "expected a Keras model file (.keras or .h5)")
        }
    }

    static func member(_ name: String, of archive: ZipArchive, path: String) throws -> [UInt8] {
        guard let entry = archive.member(named: name) else {
            let found = archive.members.map { "'\($0.name)'" }.joined(separator: ", ")
            throw NNError(.spec, path, "a Keras archive holds '\(name)'; this zip holds \(found.isEmpty ? "nothing" : found)")
        }
        return try archive.extract(entry)
    }

    static func loadArchive(_ file: MappedFile, path: String) throws -> (ModelDescription, WeightStore) {
        let archive = try ZipArchive(bytes: file.bytes, source: path, kind: .spec)
        let config = try member("config.json", of: archive, path: path)
        let description = try ModelDescription.parse(config, source: "\(path): config.json")
        let source = "\(path): model.weights.h5"
        guard let entry = archive.member(named: "model.weights.h5") else {
            _ = try member("model.weights.h5", of: archive, path: path)
            throw NNError(.spec, path, "a Keras archive holds 'model.weights.h5'")
        }
        // Keras stores the weights uncompressed: read them in place from the mapping, so the only
        // copy is the floats each dataset becomes. A re-zipped (deflated) file is inflated once,
        // into a temporary file mapped as the archive is, so its pages too are given back as
        // they are read (in memory only where no temporary file can be written).
        let h5: HDF5File
        if let stored = try archive.storedBytes(entry) {
            file.release(0..<file.bytes.count)  // the pages the CRC check read
            h5 = try HDF5File(file: MappedFile(viewing: stored, of: file), source: source)
        } else if let inflated = try archive.inflateToTemporaryFile(entry, of: file) {
            h5 = try HDF5File(file: inflated, source: source)
        } else {
            h5 = try HDF5File(bytes: try archive.extract(entry), source: source)
        }
        let store = try KerasSaving.store(h5, source: source)
        store.assets = try assets(of: archive)
        return (description, store)
    }

    /// Every file below `assets/` (what layers' `save_assets` wrote), by its path below it; a
    /// path with an empty, `.` or `..` component is refused (`nnbuild convert` writes them out).
    static func assets(of archive: ZipArchive) throws -> [String: [UInt8]] {
        var assets: [String: [UInt8]] = [:]
        var total = 0
        for member in archive.members where member.name.hasPrefix("assets/") && !member.name.hasSuffix("/") {
            let path = String(member.name.dropFirst("assets/".count))
            guard WeightStore.isPlainRelativePath(path) else {
                throw NNError(.spec, "\(archive.source): member '\(member.name)'", "an asset's path must stay below assets/ (no empty, '.' or '..' part)")
            }
            total += member.size
            guard total <= WeightStore.assetLimit else {
                throw NNError(.spec, "\(archive.source): member '\(member.name)'", "the archive's assets hold more than \(WeightStore.assetLimit >> 20) MiB; at most that is read")
            }
            assets[path] = try archive.extract(member)
        }
        return assets
    }
}

/// Keras 3's weights file (`model.weights.h5`, in an archive or from `save_weights`), as saving_lib
/// writes it: every layer's own variables at `<its path>/vars/<i>`, numbered in creation order,
/// sub-layers and nested models in groups below. The group names are saving_lib's tracking names,
/// not the layers' names, so the store keeps each variable under its path in the file
/// (`layers/sequential/layers/dense/vars/0`); binding maps the paths to layers by walking the
/// model's config as saving_lib walked the model (`SavingWalk`).
enum KerasSaving {
    /// The most groups the walk visits, and how deep: bounds a file whose links form a cycle.
    static let maximumGroups = 100_000
    static let maximumDepth = 64
    /// Groups at the root that hold training state, not the model's: never read.
    static let trainingState: Set<String> = ["optimizer"]

    /// A positional store: each variable named by its path in the file.
    static func store(_ file: HDF5File, source: String) throws -> WeightStore {
        var tensors: [(name: String, shape: [Int], values: FloatStorage)] = []
        var visited = 0
        func walk(_ group: HDF5Group, path: String, depth: Int) throws {
            visited += 1
            guard visited <= maximumGroups, depth <= maximumDepth else {
                throw NNError(.weights, source, "HDF5: the group tree at '\(group.path)' is deeper than \(maximumDepth) or holds more than \(maximumGroups) groups (a cycle?)")
            }
            for member in try group.memberNames() {
                if depth == 0, trainingState.contains(member) { continue }
                let memberPath = path.isEmpty ? member : path + "/" + member
                if try group.isGroup(member) {
                    if member == "vars" {
                        try variables(try group.group(member), path: memberPath)
                    } else {
                        try walk(try group.group(member), path: memberPath, depth: depth + 1)
                    }
                } else {
                    throw NNError(.weights, source, "HDF5: '\(memberPath)' is a dataset outside any 'vars' group; expected Keras's saving_lib layout, where a layer's variables are '<its path>/vars/0', '/vars/1', ...")
                }
            }
        }
        func variables(_ vars: HDF5Group, path: String) throws {
            // The layer's name, which Keras records since 3.x: not used to map the group (the
            // config walk does), but read, so that a malformed one is refused here.
            switch try vars.attribute("name") {
            case nil, .string?, .bytes?: break
            default: throw NNError(.weights, source, "HDF5: '\(path)' attribute 'name' must be a string (the layer's name)")
            }
            for index in try vars.memberNames() {
                // Numbered in creation order, or named by a layer's own save_own_variables
                // (IndexLookup's `idf_weights`).
                let numbered = Int(index).map { $0 >= 0 && String($0) == index } ?? false
                let named = !numbered && index.first.map { $0.isASCII && ($0.isLetter || $0 == "_") } == true
                    && index.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }
                guard numbered || named else {
                    throw NNError(.weights, source, "HDF5: '\(path)/\(index)': expected variables numbered 0, 1, ... (or named as a layer saves them, such as idf_weights)")
                }
                let dataset = try vars.dataset(index)
                tensors.append((path + "/" + index, dataset.shape, try dataset.floats()))
                // The file's pages of these values are read and will not be again: a mapped
                // file gives them back, so loading holds the weights once, not twice.
                file.reader.file.release(0..<file.reader.size)
            }
        }
        try walk(try file.root, path: "", depth: 0)
        return try WeightStore(source: source, tensors: tensors, positional: true)
    }
}

extension ZipArchive {
    /// Inflates the deflated `member` of the archive mapped as `file` into an unlinked temporary
    /// file and maps it, giving the archive's pages back as they are consumed: the inflated
    /// bytes then cost memory only while they are read, as a stored member's do, not whole beside
    /// what they are decoded into. Checked as `extract` checks (declared size, bomb, CRC-32).
    /// Nil when no temporary file can be made or written (the caller inflates into memory).
    func inflateToTemporaryFile(_ member: Member, of file: MappedFile) throws -> MappedFile? {
        func fail(_ message: String) -> NNError { NNError(kind, "\(source): member '\(member.name)'", message) }
        guard member.method == 8 else { return nil }
        guard member.size <= limit else {
            throw fail("declares \(member.size) bytes uncompressed; at most \(limit) are accepted here")
        }
        guard let base = bytes.baseAddress, member.dataOffset >= 0, member.compressedSize >= 0,
              member.dataOffset <= bytes.count - member.compressedSize else { return nil }
        let directory = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        var template = Array("\(directory)/nnbuild-inflated-XXXXXX".utf8CString)
        let descriptor = mkstemp(&template)
        guard descriptor >= 0 else { return nil }
        let path = String(cString: template)
        defer {
            close(descriptor)
            unlink(path)
        }
        var stream = z_stream()
        guard inflateInit2_(&stream, -15, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw fail("zlib could not start inflating")
        }
        defer { inflateEnd(&stream) }
        let chunk = 1 << 20
        var out = [UInt8](repeating: 0, count: chunk)
        var consumed = 0, produced = 0, released = 0
        var crc = crc32(0, nil, 0)
        let input = UnsafeMutablePointer(mutating: (base + member.dataOffset).assumingMemoryBound(to: Bytef.self))
        while true {
            let inChunk = min(member.compressedSize - consumed, 1 << 30)
            stream.next_in = input + consumed
            stream.avail_in = uInt(inChunk)
            let (result, written): (Int32, Int) = out.withUnsafeMutableBytes { raw in
                guard let start = raw.baseAddress?.assumingMemoryBound(to: Bytef.self) else { return (Z_MEM_ERROR, 0) }
                stream.next_out = start
                stream.avail_out = uInt(chunk)
                let result = CZlib.inflate(&stream, Z_NO_FLUSH)
                return (result, chunk - Int(stream.avail_out))
            }
            consumed += inChunk - Int(stream.avail_in)
            produced += written
            guard produced <= member.size else {
                throw fail("inflates past its declared size of \(member.size) bytes (a zip bomb or a corrupt archive); refused")
            }
            let complete = out.withUnsafeBytes { raw -> Bool in
                guard let start = raw.baseAddress else { return false }
                crc = crc32(crc, start.assumingMemoryBound(to: Bytef.self), uInt(written))
                var done = 0
                while done < written {
                    let count = write(descriptor, start + done, written - done)
                    if count < 0, errno == EINTR { continue }
                    guard count > 0 else { return false }
                    done += count
                }
                return true
            }
            guard complete else { return nil }  // a full disk: inflate into memory instead
            if consumed - released >= 16 << 20 {
                file.release((member.dataOffset + released)..<(member.dataOffset + consumed))
                released = consumed
            }
            if result == Z_STREAM_END { break }
            switch result {
            case Z_OK where written > 0 || consumed < member.compressedSize: continue
            case Z_OK, Z_BUF_ERROR: throw fail("the deflate data ends before the stream does (truncated)")
            case Z_DATA_ERROR:
                let reason = stream.msg.map { String(cString: $0) } ?? "invalid data"
                throw fail("the deflate data is corrupt (\(reason))")
            default: throw fail("zlib failed with status \(result)")
            }
        }
        file.release(member.dataOffset..<(member.dataOffset + member.compressedSize))
        guard produced == member.size else {
            throw fail("inflates to \(produced) bytes, the archive declares \(member.size)")
        }
        guard UInt32(crc) == member.crc else {
            throw fail("CRC-32 is 0x\(String(UInt32(crc), radix: 16)), the archive declares 0x\(String(member.crc, radix: 16)) (corrupt data)")
        }
        return try MappedFile(path: path)
    }
}
