import Foundation
import XCTest

/// Plugins are files, found relative to the working directory, and their entry points are
/// checked to be functions before they are called.
final class PluginTests: CLITestCase {
    /// Compiles C source into a shared library named `name` in the test folder, or skips.
    func compile(_ source: String, as name: String) throws {
        try write("plugin.c", source)
        try XCTSkipUnless(try shell("gcc -shared -fPIC -o '\(name)' plugin.c") == 0, "no gcc to build a test plugin")
    }

    /// A plugin that reports ABI version 999: its message proves which file was loaded.
    static let versionNinetyNine = "int nnbuild_plugin_abi_version(void) { return 999; }\nvoid nnbuild_plugin_register(void *r) {}\n"

    func testADataSymbolIsRefusedInsteadOfCalled() throws {
        try compile("int nnbuild_plugin_abi_version = 1;\nvoid nnbuild_plugin_register(void *r) {}\n", as: "libdata.so")
        let result = try run(["--plugin", path("libdata.so"), "layers"])
        XCTAssertFalse(result.signaled, result.stderr)
        XCTAssertEqual(result.status, 1)
        XCTAssertEqual(result.stderr, "error[plugin]: \(path("libdata.so")): nnbuild_plugin_abi_version is a data symbol, expected a function: declare it as `int32_t nnbuild_plugin_abi_version(void)` (or @_cdecl func)\n")
    }

    func testABareNameIsAFileInTheWorkingDirectory() throws {
        // Named like the system's libm: the file here is loaded, not the library on the search path.
        for name in ["libm.so.6", "plugin.so"] {
            try compile(PluginTests.versionNinetyNine, as: name)
            let result = try run(["--plugin", name, "layers"])
            XCTAssertEqual(result.status, 1)
            XCTAssertTrue(result.stderr.hasPrefix("error[plugin]: \(name): was built for layer registry ABI version 999"), result.stderr)
            let environment = try run(["layers"], shell: "NNBUILD_PLUGIN_PATH=\(name); export NNBUILD_PLUGIN_PATH")
            XCTAssertTrue(environment.stderr.hasPrefix("error[plugin]: \(name): was built for layer registry ABI version 999"), environment.stderr)
        }
    }

    func testABareNameNotInTheWorkingDirectoryIsNotSearchedOnTheLibraryPath() throws {
        let result = try run(["--plugin", "libc.so.6", "layers"])
        XCTAssertEqual(result.status, 1)
        XCTAssertEqual(result.stderr, "error[plugin]: libc.so.6: no such plugin file in the working directory (plugins are files, never looked up on the library path)\n")
    }

    func testHelpSaysThatLoadingAPluginRunsItsCode() throws {
        for arguments in [["--help"], ["infer", "--help"]] {
            let text = try run(arguments).text.split(whereSeparator: \.isWhitespace).joined(separator: " ")
            XCTAssertTrue(text.contains("Loading a plugin runs its code"), text)
            XCTAssertTrue(text.contains("never searched on the library path"), text)
        }
    }
}
