import Crypto
import Foundation

/// Random identifiers and secrets from the system CSPRNG.
enum Identifiers {
    /// A random UUID string (lower-case).
    static func uuid() -> String { UUID().uuidString.lowercased() }

    /// The op id of a REST write: the client's `opId` when it sent one, else one made up here.
    /// `minted` goes with it to the engine (`PushRequest.mintedOpIds`): no result is kept for a
    /// made-up id, since no one can retry with it.
    static func restOpId(_ sent: String?) -> (id: String, minted: Bool) {
        if let sent { return (sent, false) }
        return ("rest-\(uuid())", true)
    }

    /// `count` random bytes.
    static func randomBytes(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }

    /// `count` random bytes as base64url without padding.
    static func randomToken(bytes count: Int) -> String {
        Data(randomBytes(count)).base64URLEncoded()
    }

    /// SHA-256 of a string's UTF-8 bytes.
    static func sha256(_ string: String) -> Data {
        Data(SHA256.hash(data: Data(string.utf8)))
    }
}

extension Data {
    /// Base64url without padding (RFC 4648 §5).
    func base64URLEncoded() -> String {
        self.base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// Decodes base64url with or without padding.
    init?(base64URLEncoded string: String) {
        var base64 = string.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        let remainder = base64.count % 4
        if remainder == 1 { return nil }
        if remainder > 0 { base64 += String(repeating: "=", count: 4 - remainder) }
        self.init(base64Encoded: base64)
    }
}

/// Compares two byte strings in time that depends only on their lengths.
func constantTimeEquals(_ lhs: some Collection<UInt8>, _ rhs: some Collection<UInt8>) -> Bool {
    guard lhs.count == rhs.count else { return false }
    var difference: UInt8 = 0
    for (left, right) in zip(lhs, rhs) { difference |= left ^ right }
    return difference == 0
}
