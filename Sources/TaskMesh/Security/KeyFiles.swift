import Foundation
import ZMQ

/// Reads and writes CURVE key files: one Z85 key per file, lines starting with `#` ignored.
/// A secret key file is created with mode 0600; nothing here ever prints a secret key.
public enum KeyFiles {
    /// Writes `NAME.key` (the secret key, mode 0600) and `NAME.pub` (the public key) in
    /// `folder`, refusing to overwrite either. Returns the paths written.
    @discardableResult
    public static func generate(name: String, in folder: String = ".") throws -> (secret: String, public: String) {
        let pair = try CurveKeyPair.generate()
        let secretPath = (folder as NSString).appendingPathComponent("\(name).key")
        let publicPath = (folder as NSString).appendingPathComponent("\(name).pub")
        for path in [secretPath, publicPath] where FileManager.default.fileExists(atPath: path) {
            throw SecurityError(.badKeyFile, "\(path) exists; remove it first to make a new key")
        }
        let secretText = "# TaskMesh CURVE secret key of \(name): keep it private\n\(pair.secretKey)\n"
        guard FileManager.default.createFile(atPath: secretPath, contents: Data(secretText.utf8),
                                             attributes: [.posixPermissions: 0o600]) else {
            throw SecurityError(.badKeyFile, "cannot write \(secretPath)")
        }
        let publicText = "# TaskMesh CURVE public key of \(name)\n\(pair.publicKey)\n"
        guard FileManager.default.createFile(atPath: publicPath, contents: Data(publicText.utf8),
                                             attributes: [.posixPermissions: 0o644]) else {
            throw SecurityError(.badKeyFile, "cannot write \(publicPath)")
        }
        return (secretPath, publicPath)
    }

    /// The key pair whose secret key `path` holds.
    static func readSecret(_ path: String) throws(SecurityError) -> CurveKeyPair {
        let text = try readKeyText(path, what: "secret key")
        do {
            return try CurveKeyPair(secretKey: text)
        } catch {
            throw SecurityError(.badKeyFile, "\(path) does not hold a valid secret key")
        }
    }

    /// The 32-byte public key `path` holds.
    static func readPublic(_ path: String) throws(SecurityError) -> [UInt8] {
        let text = try readKeyText(path, what: "public key")
        guard let key = Z85.decode(text), key.count == 32 else {
            throw SecurityError(.badKeyFile, "\(path) does not hold a 40-character Z85 public key")
        }
        return key
    }

    /// Every public key in `paths`: files, or folders whose `.pub` files are read.
    static func readAllowlist(_ paths: [String]) throws(SecurityError) -> Set<[UInt8]> {
        var keys = Set<[UInt8]>()
        for path in paths {
            var isFolder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else {
                throw SecurityError(.badKeyFile, "\(path): no such file or folder")
            }
            if isFolder.boolValue {
                let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
                for name in names.sorted() where name.hasSuffix(".pub") {
                    keys.insert(try readPublic((path as NSString).appendingPathComponent(name)))
                }
            } else {
                keys.insert(try readPublic(path))
            }
        }
        return keys
    }

    private static func readKeyText(_ path: String, what: String) throws(SecurityError) -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SecurityError(.badKeyFile, "cannot read the \(what) file \(path)")
        }
        let lines = String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.hasPrefix("#") }
        guard lines.count == 1 else {
            throw SecurityError(.badKeyFile, "\(path) must hold exactly one key line")
        }
        return lines[0]
    }
}
