import Crypto
import Foundation
import HummingbirdBcrypt

/// bcrypt over an HMAC-SHA256 pre-hash with a server pepper.
///
/// bcrypt reads only the first 72 bytes of its input; pre-hashing makes every byte of a
/// password count (two passwords sharing their first 72 bytes do not both verify), and base64
/// keeps NUL bytes out of bcrypt's input. Hashing runs on its own queue, never on an event loop.
public struct PasswordHasher: Sendable {
    let pepper: SymmetricKey
    let cost: UInt8
    /// A hash of a random password, verified against when the account does not exist so that
    /// "no such user" and "wrong password" take the same time.
    let dummyHash: String

    private static let queue = DispatchQueue(label: "cairn.bcrypt", attributes: .concurrent)

    /// - Parameters:
    ///   - pepper: the server pepper (≥ 256 bits).
    ///   - cost: the bcrypt cost; 12 in production, lower only in tests.
    public init(pepper: Data, cost: UInt8 = 12) {
        self.pepper = SymmetricKey(data: pepper)
        self.cost = cost
        let prehash = Self.prehash(Identifiers.randomToken(bytes: 16), pepper: SymmetricKey(data: pepper))
        self.dummyHash = Bcrypt.hash(prehash, cost: cost)
    }

    static func prehash(_ password: String, pepper: SymmetricKey) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Data(password.utf8), using: pepper)
        return Data(mac).base64EncodedString()
    }

    /// The bcrypt hash to store for `password`.
    public func hash(_ password: String) async -> String {
        let prehash = Self.prehash(password, pepper: self.pepper)
        let cost = self.cost
        return await withCheckedContinuation { continuation in
            Self.queue.async { continuation.resume(returning: Bcrypt.hash(prehash, cost: cost)) }
        }
    }

    /// Whether `password` matches `hash`; with `hash == nil` verifies against a dummy hash and
    /// returns `false`, taking the same time.
    public func verify(_ password: String, hash: String?) async -> Bool {
        let prehash = Self.prehash(password, pepper: self.pepper)
        let target = hash ?? self.dummyHash
        let result = await withCheckedContinuation { continuation in
            Self.queue.async { continuation.resume(returning: Bcrypt.verify(prehash, hash: target)) }
        }
        return hash != nil && result
    }
}
