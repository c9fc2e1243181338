/// The dependency graph as inline SVG (docs/ARCHITECTURE.md §12): one box per
/// `DependencyGraphLayout` box, filled by its state (a summary box shows its
/// states as a bar), an arrow from each dependency to its dependent. Task ids
/// are untrusted text: in labels and `<title>`s they pass `HTMLText`, and no
/// id is ever an attribute.
enum DependencyGraphSVG {
    static func svg(_ layout: DependencyGraphLayout, limits: DashboardLimits) -> String {
        let w = DependencyGraphLayout.boxWidth, h = DependencyGraphLayout.boxHeight
        var out = "<svg class=\"graph\" xmlns=\"http://www.w3.org/2000/svg\" width=\"\(layout.width)\" height=\"\(layout.height)\" "
            + "viewBox=\"0 0 \(layout.width) \(layout.height)\" role=\"img\" aria-labelledby=\"graph-title\">"
            + "<title id=\"graph-title\">Dependency graph: \(layout.taskCount) tasks in \(layout.boxes.count) boxes</title>"
            + "<defs><marker id=\"arrow\" viewBox=\"0 0 8 8\" refX=\"8\" refY=\"4\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\">"
            + "<path class=\"arrowhead\" d=\"M0,0 L8,4 L0,8 z\"/></marker></defs>\n<g class=\"edges\">"
        for edge in layout.edges {
            let from = layout.boxes[edge.from], to = layout.boxes[edge.to]
            let x1 = from.x + w / 2, y1 = from.y + h, x2 = to.x + w / 2, y2 = to.y
            let bend = max(20, abs(y2 - y1) / 2)
            out += "<path class=\"edge\" d=\"M\(x1),\(y1) C\(x1),\(y1 + bend) \(x2),\(y2 - bend) \(x2),\(y2)\" marker-end=\"url(#arrow)\"/>"
        }
        out += "</g>\n<g class=\"boxes\">"
        for box in layout.boxes {
            out += box.isSummary ? summary(box, limits: limits) : task(box, limits: limits)
        }
        return out + "</g></svg>"
    }

    private static func task(_ box: DependencyGraphLayout.Box, limits: DashboardLimits) -> String {
        let id = box.members.first ?? ""
        let state = box.state.rawValue
        return "<g class=\"task\" data-state=\"\(state)\"><title>\(HTMLText.shown(id, limit: limits.idScalars)): \(state)</title>"
            + "<rect class=\"box s-\(state)\" x=\"\(box.x)\" y=\"\(box.y)\" width=\"\(DependencyGraphLayout.boxWidth)\" height=\"\(DependencyGraphLayout.boxHeight)\" rx=\"6\"/>"
            + "<text x=\"\(box.x + 8)\" y=\"\(box.y + 18)\">\(HTMLText.shown(id, limit: 20))</text>"
            + "<text class=\"state\" x=\"\(box.x + 8)\" y=\"\(box.y + 35)\">\(state)</text></g>"
    }

    /// A box for many tasks: how many, the first one's id, and a bar of their states.
    private static func summary(_ box: DependencyGraphLayout.Box, limits: DashboardLimits) -> String {
        let w = DependencyGraphLayout.boxWidth, h = DependencyGraphLayout.boxHeight
        let counts = DependencyGraphLayout.stateOrder.compactMap { state in box.states[state].map { (state, $0) } }
        let described = counts.map { "\($0.1) \($0.0.rawValue)" }.joined(separator: ", ")
        let headline = box.overflow ? "\(box.members.count) more (not drawn)" : "\(box.members.count) tasks"
        let first = box.members.first.map { HTMLText.shown($0, limit: limits.idScalars) } ?? ""
        var out = "<g class=\"summary\" data-tasks=\"\(box.members.count)\"><title>\(headline), from \(first): \(described)</title>"
            + "<rect class=\"box s-\(box.state.rawValue)\" x=\"\(box.x)\" y=\"\(box.y)\" width=\"\(w)\" height=\"\(h)\" rx=\"6\"/>"
            + "<text x=\"\(box.x + 8)\" y=\"\(box.y + 18)\">\(headline)</text>"
        // The states as a bar along the bottom, widest first.
        var x = Double(box.x + 8)
        let span = Double(w - 16), total = Double(max(1, box.members.count))
        for (state, count) in counts.sorted(by: { $0.1 > $1.1 }) {
            let width = span * Double(count) / total
            out += "<rect class=\"s-\(state.rawValue)\" x=\"\(Int(x.rounded()))\" y=\"\(box.y + h - 14)\" width=\"\(max(1, Int(width.rounded())))\" height=\"8\"/>"
            x += width
        }
        return out + "</g>"
    }
}
