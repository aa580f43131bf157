import Foundation
import XCTest
@testable import ModelSpec

/// SavingWalk: where Keras's saving_lib saves each layer, from the config alone, checked against
/// real files (Tests/KerasFiles/walk) and small hand-written configs.
final class SavingWalkTests: XCTestCase {
    static let walk = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("KerasFiles/walk")

    func places(_ file: String, children: (LayerSpec) throws -> [SavedChild] = { _ in [] }) throws -> [SavingWalk.Place] {
        let path = Self.walk.appendingPathComponent(file).path
        let graph = try GraphSpec.parse(try ModelFile.configText(path: path), source: path)
        return try SavingWalk.places(graph, children: children)
    }

    func summary(_ places: [SavingWalk.Place]) -> [String] {
        places.map { "\($0.group) = \($0.names.joined(separator: "/")) @ \($0.variablePath)" }
    }

    /// A Functional holding Dense `dense_1`, a Sequential `inner` with `dense_7`, and Dense `dense`:
    /// the groups are numbered by class, in the model's layer order, whatever the names.
    func testGroupsAreTrackingNamesNotLayerNames() throws {
        XCTAssertEqual(summary(try places("nested.keras")), [
            " =  @ ",
            "layers/input_layer = input_layer_1 @ input_layer_1",
            "layers/dense = dense_1 @ dense_1",
            "layers/sequential = inner @ ",
            "layers/sequential/layers/dense = inner/dense_7 @ dense_7",
            "layers/dense_1 = dense @ dense",
        ])
        // A Sequential leaves out its InputLayer.
        XCTAssertEqual(summary(try places("renamed.keras")).dropFirst(), [
            "layers/dense = dense_1 @ dense_1",
            "layers/dense_1 = dense_2 @ dense_2",
        ])
    }

    /// Sub-layers come from the layer type's declaration: attributes in sorted order with private
    /// ones last, a list's items named by class and numbered when repeated. A sub-layer whose
    /// config has a build_config is built apart from its parent: its variables are scoped by its
    /// name alone.
    func testSubLayersFollowTheDeclarationInSavingLibOrder() throws {
        let json: JSONValue = try JSONParser.parse(Array("""
        {"class_name": "Sequential", "config": {"name": "sequential", "layers": [
          {"class_name": "InputLayer", "config": {"batch_shape": [null, 5, 3], "name": "input"}},
          {"class_name": "Stack", "config": {"name": "stack", "cells": [
            {"class_name": "LSTMCell", "config": {"name": "a"}, "build_config": {"input_shape": [null, 3]}},
            {"class_name": "GRUCell", "config": {"name": "b"}},
            {"class_name": "LSTMCell", "config": {"name": "c"}}]}}]}}
        """.utf8), source: "test")
        let graph = try GraphSpec.parse(json, source: "test")
        let walked = try SavingWalk.places(graph) { spec in
            guard spec.className == "Stack" else { return [] }
            return try SavedChildren.nestedList("cells", key: "cells").children(spec)
                + SavedChildren.made("_private", className: "Dense", name: "hidden").children(spec)
                + SavedChildren.made("public", className: "Dense", name: "shown").children(spec)
        }
        XCTAssertEqual(summary(walked).dropFirst(), [
            "layers/stack = stack @ stack",
            "layers/stack/cells/lstm_cell = stack/a @ a",
            "layers/stack/cells/gru_cell = stack/b @ stack/b",
            "layers/stack/cells/lstm_cell_1 = stack/c @ stack/c",
            "layers/stack/public = stack/shown @ stack/shown",
            "layers/stack/_private = stack/hidden @ stack/hidden",
        ])
    }

    /// A declaration whose config key is not a layer list is refused, naming where.
    func testABadNestedListIsRefused() throws {
        let spec = LayerSpec(className: "Stack", name: "stack", config: .object([("cells", .int(3))]), path: "config.layers[1]")
        XCTAssertThrowsError(try SavedChildren.nestedList("cells", key: "cells").children(spec)) { error in
            XCTAssertEqual("\(error)", "config.layers[1].config.cells: layer 'stack' (Stack): expected a list of layer objects (the sub-layers its weights are saved under)")
        }
    }
}
