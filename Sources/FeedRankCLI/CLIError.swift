import ArgumentParser
import Foundation

/// Contract section 6: exit 0 on success, 2 on bad usage or configuration, 1 on a failure at
/// run time; the error is one line on stderr naming the problem.
public struct CLIError: Error, CustomStringConvertible {
    public enum Kind: Sendable { case usage, runtime }
    public let kind: Kind
    public let message: String

    public static func usage(_ m: String) -> CLIError { CLIError(kind: .usage, message: m) }
    public static func runtime(_ m: String) -> CLIError { CLIError(kind: .runtime, message: m) }

    public var description: String { message }
}

extension FeedRankCommand {
    /// Parses, runs, and exits with the contract's status codes.
    public static func runMain() async -> Never {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            Foundation.exit(0)
        } catch let e as CLIError {
            FileHandle.standardError.write(Data("feedrank: \(e.message)\n".utf8))
            Foundation.exit(e.kind == .usage ? 2 : 1)
        } catch let e as ExitCode where e != .success {
            // The command has written its own message (topics apply); only the status remains.
            Foundation.exit(e.rawValue)
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                // --help, --version
                print(fullMessage(for: error))
                Foundation.exit(0)
            }
            let message = self.message(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
            FileHandle.standardError.write(Data("feedrank: \(message)\n".utf8))
            // Parsing and validation problems are usage errors (2); anything else failed at run time.
            Foundation.exit(code == .validationFailure || error is ValidationError ? 2 : 1)
        }
    }
}
