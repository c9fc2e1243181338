/// A table that reads on a phone (docs/ARCHITECTURE.md §12): below 40em the
/// stylesheet turns each row into a card and shows each cell's column name
/// (`data-label`, always dgrid's own words) before it. Cells are HTML already
/// made safe by the caller (`HTMLText`).
struct HTMLTable {
    struct Column {
        let title: String
        let numeric: Bool

        init(_ title: String, numeric: Bool = false) {
            self.title = title
            self.numeric = numeric
        }
    }

    let columns: [Column]
    /// Few narrow columns that fit a phone as they are: never turned into cards.
    let narrow: Bool
    private(set) var rows: [[String]] = []

    init(_ columns: [Column], narrow: Bool = false) {
        self.columns = columns
        self.narrow = narrow
    }

    mutating func add(_ cells: [String]) {
        rows.append(cells)
    }

    var html: String {
        var out = "<div class=\"scroll\"><table\(narrow ? "" : " class=\"rows\"")><thead><tr>"
        for column in columns {
            out += column.numeric ? "<th class=\"num\">\(column.title)</th>" : "<th>\(column.title)</th>"
        }
        out += "</tr></thead><tbody>\n"
        for row in rows {
            out += "<tr>"
            for (column, cell) in zip(columns, row) {
                out += "<td\(column.numeric ? " class=\"num\"" : "") data-label=\"\(column.title)\">\(cell)</td>"
            }
            out += "</tr>\n"
        }
        return out + "</tbody></table></div>\n"
    }
}
