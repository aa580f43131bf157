import LayerRegistry

/// `Hashing` (Keras 3, layers/preprocessing/hashing.py) on numeric inputs: each value, cast to
/// int64 (a float truncates toward zero) and written in decimal as `tf.as_string` does, hashed
/// into `num_bins` bins as TensorFlow's `tf.strings.to_hash_bucket_fast` does (FarmHash's
/// Fingerprint64, modulo the bins) or, with a `salt`, `to_hash_bucket_strong` (SipHash-2-4 keyed
/// by the salt's two integers); with `mask_value`, that value goes to bin 0 and the others to
/// 1…num_bins − 1. Then `output_mode` (int, one_hot, multi_hot, count) as CategoryEncoding.
///
/// On a string input (a model input of dtype string) each string's UTF-8 bytes are hashed as they
/// are, and `mask_value` is a string.
///
/// nnbuild's tensors are float32, so an integer input past 2^24 in magnitude reaches the layer
/// rounded (as it would any other layer).
///
/// Config: `num_bins` (required), `mask_value` (null), `salt` (null, an integer or two),
/// `output_mode` ("int"), `sparse` (false).
public struct Hashing: Layer, ReadsStrings {
    let bins: Int
    let maskValue: Double?
    let maskString: String?
    let salt: (UInt64, UInt64)?
    let mode: CategoricalOutput
    public let outputShape: [Int?]

    static func factory(_ context: LayerContext) throws -> any Layer {
        let bins = try context.positiveInt("num_bins", maximum: 1 << 24)
        var maskValue: Double?, maskString: String?
        let strings = context.inputHoldsStrings
        switch context.value("mask_value", kind: strings ? "a string or null" : "a number or null", default: "null") {
        case nil, .null?: break
        case let .int(value)? where !strings: maskValue = Double(value)
        case let .double(value)? where !strings: maskValue = value
        case let .string(value)? where strings: maskString = value
        case let other?:
            throw context.error("'mask_value' must be \(strings ? "a string (the input holds strings)" : "a number (the input holds numbers)"), found \(other.brief())", key: "mask_value")
        }
        let salt = try readSalt(context)
        let mode = try CategoricalOutput.read(context, default: "int")
        let shape = try mode.outputShape(context.inputShape, depth: bins, context)
        try context.sampleCount(shape)
        return Hashing(bins: bins, maskValue: maskValue, maskString: maskString, salt: salt, mode: mode, outputShape: shape)
    }

    public func forward(_ input: Tensor) throws -> Tensor {
        let masked = (maskValue != nil || maskString != nil) && bins > 1
        let hashed = masked ? bins - 1 : bins
        func bucket(_ bytes: [UInt8]) -> Float { Float(Int(Self.hash(bytes, salt: salt) % UInt64(hashed)) + (masked ? 1 : 0)) }
        let indices: [Float]
        if let strings = input.strings {
            indices = strings.map { masked && $0 == maskString ? 0 : bucket(Array($0.utf8)) }
        } else {
            indices = input.data.map { masked && Double($0) == maskValue ? 0 : bucket(Self.decimal($0)) }
        }
        return try encodeCategories(Tensor(shape: input.shape, data: indices), mode: mode, depth: bins, name: "Hashing")
    }

    /// Config `salt`: null, one integer (both key halves) or two, as Keras's Hashing and lookups take it.
    static func readSalt(_ context: LayerContext) throws -> (UInt64, UInt64)? {
        switch context.value("salt", kind: "an integer, two integers or null", default: "null") {
        case nil, .null?: return nil
        case let .int(value)?: return (UInt64(bitPattern: value), UInt64(bitPattern: value))
        case let .array(values)?:
            guard values.count == 2, case let .int(first) = values[0], case let .int(second) = values[1] else {
                throw context.error("'salt' must be an integer or a list of two integers, found \(JSONValue.array(values).brief())", key: "salt")
            }
            return (UInt64(bitPattern: first), UInt64(bitPattern: second))
        case let other?: throw context.error("'salt' must be an integer or a list of two integers, found \(other.brief())", key: "salt")
        }
    }

    /// The bytes `tf.as_string` writes for `value` cast to int64 (TensorFlow's cast: NaN → 0 and
    /// out-of-range values saturate, on x86).
    static func decimal(_ value: Float) -> [UInt8] {
        let integer: Int64
        if value.isNaN {
            integer = 0
        } else if value >= 9.223372e18 {
            integer = .max
        } else if value <= -9.223372e18 {
            integer = .min
        } else {
            integer = Int64(value.rounded(.towardZero))
        }
        return Array(String(integer).utf8)
    }

    static func hash(_ bytes: [UInt8], salt: (UInt64, UInt64)?) -> UInt64 {
        if let salt { return sipHash24(bytes, key: salt) }
        return fingerprint64(bytes)
    }

    // MARK: FarmHash Fingerprint64 (farmhashna)

    private static let k0: UInt64 = 0xc3a5_c85c_97cb_3127
    private static let k1: UInt64 = 0xb492_b66f_be98_f273
    private static let k2: UInt64 = 0x9ae1_6a3b_2f90_404f

    private static func fetch64(_ s: [UInt8], _ at: Int) -> UInt64 {
        (0..<8).reduce(UInt64(0)) { $0 | UInt64(s[at + $1]) << (8 * UInt64($1)) }
    }

    private static func fetch32(_ s: [UInt8], _ at: Int) -> UInt64 {
        (0..<4).reduce(UInt64(0)) { $0 | UInt64(s[at + $1]) << (8 * UInt64($1)) }
    }

    private static func rotate(_ value: UInt64, _ shift: UInt64) -> UInt64 {
        shift == 0 ? value : (value >> shift) | (value << (64 - shift))
    }

    static func shiftMix(_ value: UInt64) -> UInt64 { value ^ (value >> 47) }

    private static func hashLen16(_ u: UInt64, _ v: UInt64, _ mul: UInt64) -> UInt64 {
        var a = (u ^ v) &* mul
        a ^= a >> 47
        var b = (v ^ a) &* mul
        b ^= b >> 47
        return b &* mul
    }

    /// FarmHash's Fingerprint64 of `s` (TensorFlow's `to_hash_bucket_fast` takes it modulo the bins).
    static func fingerprint64(_ s: [UInt8]) -> UInt64 {
        let length = UInt64(s.count)
        switch s.count {
        case 0:
            return k2
        case 1...3:
            let a = UInt32(s[0]), b = UInt32(s[s.count >> 1]), c = UInt32(s[s.count - 1])
            let y = a &+ (b << 8), z = UInt32(s.count) &+ (c << 2)
            return shiftMix(UInt64(y) &* k2 ^ UInt64(z) &* k0) &* k2
        case 4...7:
            let mul = k2 &+ length &* 2
            let a = fetch32(s, 0)
            return hashLen16(length &+ (a << 3), fetch32(s, s.count - 4), mul)
        case 8...16:
            let mul = k2 &+ length &* 2
            let a = fetch64(s, 0) &+ k2, b = fetch64(s, s.count - 8)
            let c = rotate(b, 37) &* mul &+ a, d = (rotate(a, 25) &+ b) &* mul
            return hashLen16(c, d, mul)
        case 17...32:
            let mul = k2 &+ length &* 2
            let a = fetch64(s, 0) &* k1, b = fetch64(s, 8)
            let c = fetch64(s, s.count - 8) &* mul, d = fetch64(s, s.count - 16) &* k2
            return hashLen16(rotate(a &+ b, 43) &+ rotate(c, 30) &+ d, a &+ rotate(b &+ k2, 18) &+ c, mul)
        case 33...64:
            let mul = k2 &+ length &* 2
            let a = fetch64(s, 0) &* k2, b = fetch64(s, 8)
            let c = fetch64(s, s.count - 8) &* mul, d = fetch64(s, s.count - 16) &* k2
            let y = rotate(a &+ b, 43) &+ rotate(c, 30) &+ d
            let z = hashLen16(y, a &+ rotate(b &+ k2, 18) &+ c, mul)
            let e = fetch64(s, 16) &* mul, f = fetch64(s, 24)
            let g = (y &+ fetch64(s, s.count - 32)) &* mul, h = (z &+ fetch64(s, s.count - 24)) &* mul
            return hashLen16(rotate(e &+ f, 43) &+ rotate(g, 30) &+ h, e &+ rotate(f &+ a, 18) &+ g, mul)
        default:
            return fingerprint64Long(s)
        }
    }

    /// Two 64-bit halves from 32 bytes at `at` and two seeds (farmhash's WeakHashLen32WithSeeds).
    private static func weakHash32(_ s: [UInt8], _ at: Int, _ seedA: UInt64, _ seedB: UInt64) -> (UInt64, UInt64) {
        let w = fetch64(s, at), x = fetch64(s, at + 8), y = fetch64(s, at + 16), z = fetch64(s, at + 24)
        var a = seedA &+ w
        var b = rotate(seedB &+ a &+ z, 21)
        let c = a
        a = a &+ x &+ y
        b = b &+ rotate(a, 44)
        return (a &+ z, b &+ c)
    }

    /// Fingerprint64 of more than 64 bytes: 64-byte blocks into a state of five words, then the
    /// last 64 bytes (which may overlap the last block).
    private static func fingerprint64Long(_ s: [UInt8]) -> UInt64 {
        let seed: UInt64 = 81
        var x = seed, y = seed &* k1 &+ 113
        var z = shiftMix(y &* k2 &+ 113) &* k2
        var v: (UInt64, UInt64) = (0, 0), w: (UInt64, UInt64) = (0, 0)
        x = x &* k2 &+ fetch64(s, 0)
        let end = (s.count - 1) / 64 * 64, last64 = s.count - 64
        var at = 0
        repeat {
            x = rotate(x &+ y &+ v.0 &+ fetch64(s, at + 8), 37) &* k1
            y = rotate(y &+ v.1 &+ fetch64(s, at + 48), 42) &* k1
            x ^= w.1
            y = y &+ v.0 &+ fetch64(s, at + 40)
            z = rotate(z &+ w.0, 33) &* k1
            v = weakHash32(s, at, v.1 &* k1, x &+ w.0)
            w = weakHash32(s, at + 32, z &+ w.1, y &+ fetch64(s, at + 16))
            swap(&z, &x)
            at += 64
        } while at != end
        let mul = k1 &+ ((z & 0xff) << 1)
        at = last64
        w.0 = w.0 &+ UInt64((s.count - 1) & 63)
        v.0 = v.0 &+ w.0
        w.0 = w.0 &+ v.0
        x = rotate(x &+ y &+ v.0 &+ fetch64(s, at + 8), 37) &* mul
        y = rotate(y &+ v.1 &+ fetch64(s, at + 48), 42) &* mul
        x ^= w.1 &* 9
        y = y &+ v.0 &* 9 &+ fetch64(s, at + 40)
        z = rotate(z &+ w.0, 33) &* mul
        v = weakHash32(s, at, v.1 &* mul, x &+ w.0)
        w = weakHash32(s, at + 32, z &+ w.1, y &+ fetch64(s, at + 16))
        swap(&z, &x)
        return hashLen16(hashLen16(v.0, w.0, mul) &+ shiftMix(y) &* k0 &+ z, hashLen16(v.1, w.1, mul) &+ x, mul)
    }

    // MARK: SipHash-2-4

    static func sipHash24(_ s: [UInt8], key: (UInt64, UInt64)) -> UInt64 {
        var v0: UInt64 = 0x736f_6d65_7073_6575 ^ key.0, v1: UInt64 = 0x646f_7261_6e64_6f6d ^ key.1
        var v2: UInt64 = 0x6c79_6765_6e65_7261 ^ key.0, v3: UInt64 = 0x7465_6462_7974_6573 ^ key.1
        func round() {
            v0 = v0 &+ v1; v1 = rotateLeft(v1, 13); v1 ^= v0; v0 = rotateLeft(v0, 32)
            v2 = v2 &+ v3; v3 = rotateLeft(v3, 16); v3 ^= v2
            v0 = v0 &+ v3; v3 = rotateLeft(v3, 21); v3 ^= v0
            v2 = v2 &+ v1; v1 = rotateLeft(v1, 17); v1 ^= v2; v2 = rotateLeft(v2, 32)
        }
        func rotateLeft(_ x: UInt64, _ b: UInt64) -> UInt64 { (x << b) | (x >> (64 - b)) }
        let whole = s.count / 8 * 8
        for at in stride(from: 0, to: whole, by: 8) {
            let m = fetch64(s, at)
            v3 ^= m
            round(); round()
            v0 ^= m
        }
        var last = UInt64(s.count & 0xff) << 56
        for (i, byte) in s[whole...].enumerated() { last |= UInt64(byte) << (8 * UInt64(i)) }
        v3 ^= last
        round(); round()
        v0 ^= last
        v2 ^= 0xff
        round(); round(); round(); round()
        return v0 ^ v1 ^ v2 ^ v3
    }
}

/// `HashedCrossing` (Keras 3, layers/preprocessing/hashed_crossing.py): the cross of two integer
/// features (Keras's `compute_output_shape` takes no more), one value per sample each, hashed as `tf.sparse.cross_hashed` does: from the
/// seed 0xDECAFCAFFE, each feature's int64 value folded in with FarmHash's FingerprintCat64, the
/// result modulo `num_bins`; then `output_mode` ("int" or "one_hot").
///
/// Inputs of per-sample shape () or (1,), all alike; integers past 2^24 arrive rounded, as
/// nnbuild's inputs are float32.
public struct HashedCrossing: NodeLayer {
    let bins: Int
    let mode: CategoricalOutput
    public let outputShapes: [[Int?]]

    static func factory(_ context: LayerContext) throws -> any NodeLayer {
        let bins = try context.positiveInt("num_bins", maximum: 1 << 24)
        let mode = try context.choice("output_mode", default: "int", allowed: ["int", "one_hot"]) == "int" ? CategoricalOutput.int : .oneHot
        if try context.bool("sparse", default: false) {
            throw context.error("'sparse' is true; nnbuild computes dense tensors only", key: "sparse")
        }
        let shapes = context.inputShapes
        guard shapes.count == 2 else { throw context.error("crosses two inputs (as Keras does), called on \(shapes.count)") }
        guard let first = shapes.first, first.count <= 1, first.allSatisfy({ $0 == 1 }), shapes.allSatisfy({ $0 == first }) else {
            throw context.error("expects inputs of one shape, (batch,) or (batch, 1), found \(shapes.map(describeShape).joined(separator: ", "))")
        }
        let output = try mode.outputShape(first, depth: bins, context)
        try context.sampleCount(output)
        return HashedCrossing(bins: bins, mode: mode, outputShapes: [output])
    }

    public func call(_ inputs: [Tensor]) throws -> [Tensor] {
        guard let first = inputs.first, inputs.allSatisfy({ $0.shape == first.shape }) else {
            throw NNError(.input, "HashedCrossing", "expects inputs of one shape, found \(inputs.map(\.shape))")
        }
        var crossed = first
        for index in first.data.indices {
            var hash: UInt64 = 0xDE_CAFC_AFFE
            for input in inputs {
                let value = input.data[index]
                guard value.isFinite, abs(value) < 9.2e18 else {
                    throw NNError(.input, "HashedCrossing", "an input holds \(value), which is no int64")
                }
                hash = Self.fingerprintCat64(hash, UInt64(bitPattern: Int64(value.rounded(.towardZero))))
            }
            crossed.data[index] = Float(hash % UInt64(bins))
        }
        return [try encodeCategories(crossed, mode: mode, depth: bins, name: "HashedCrossing")]
    }

    /// FarmHash's FingerprintCat64: two fingerprints combined into one.
    static func fingerprintCat64(_ first: UInt64, _ second: UInt64) -> UInt64 {
        let mul: UInt64 = 0xc6a4_a793_5bd1_e995
        let shiftMix = Hashing.shiftMix
        var result = first ^ mul
        result ^= shiftMix(second &* mul) &* mul
        result = result &* mul
        result = shiftMix(result) &* mul
        return shiftMix(result)
    }
}

extension Builtins {
    static func registerHashing(_ registry: LayerRegistry) {
        registry.register("HashedCrossing", origin: "builtin",
                          summary: "The cross of integer features hashed into num_bins bins as tf.sparse.cross_hashed does.",
                          factory: HashedCrossing.factory)
        registry.register("Hashing", origin: "builtin",
                          summary: "Numbers or strings hashed into num_bins bins as TensorFlow's to_hash_bucket_fast/strong does, then encoded.",
                          factory: Hashing.factory)
    }
}
