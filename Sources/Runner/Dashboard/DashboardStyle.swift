import Foundation
import Sandbox

/// The dashboard's one stylesheet, inline (docs/ARCHITECTURE.md §12): the
/// system's own fonts, no external file, readable from a phone's width up —
/// below 40em every table row becomes a card whose cells carry their column's
/// name. The page's Content-Security-Policy allows exactly this stylesheet (by
/// its hash) and nothing else: no script, no image, no other style.
enum DashboardStyle {
    static let css: String = {
        var css = """
            :root{color-scheme:light dark;--fg:#1d2330;--muted:#5b6475;--bg:#f6f7f9;--card:#fff;--line:#d9dde4;--bad:#b42318;--warn:#9a6700;--ok:#1a7f37}
            @media (prefers-color-scheme:dark){:root{--fg:#e6e9ef;--muted:#a3abba;--bg:#14171c;--card:#1d2129;--line:#333a46;--bad:#ff8a80;--warn:#e3b341;--ok:#6fdd8b}}
            *{box-sizing:border-box}
            body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--fg);background:var(--bg)}
            header,main,footer{max-width:72rem;margin:0 auto;padding:0 1rem}
            header{padding-top:1rem}
            h1{font-size:1.4rem;margin:.2rem 0}
            h2{font-size:1.15rem;margin:1.6rem 0 .5rem;border-bottom:1px solid var(--line);padding-bottom:.25rem}
            h3{font-size:1rem;margin:1rem 0 .4rem}
            code,pre,.id{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace;font-size:.88em}
            .id{overflow-wrap:anywhere}
            .meta,.note{color:var(--muted);font-size:.9rem;overflow-wrap:anywhere}
            .cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(8.5rem,1fr));gap:.6rem;margin:1rem 0 .4rem;padding:0}
            .card{background:var(--card);border:1px solid var(--line);border-radius:.5rem;padding:.6rem .8rem}
            .card dt{color:var(--muted);font-size:.85rem}
            .card dd{margin:0;font-size:1.6rem;font-weight:600}
            .bad{color:var(--bad)}.warn{color:var(--warn)}.ok{color:var(--ok)}
            .scroll{overflow-x:auto;background:var(--card);border:1px solid var(--line);border-radius:.5rem}
            table{border-collapse:collapse;width:100%;background:var(--card)}
            th,td{text-align:left;padding:.35rem .55rem;border-bottom:1px solid var(--line);vertical-align:top}
            th{font-size:.85rem;color:var(--muted);font-weight:600}
            td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
            details{background:var(--card);border:1px solid var(--line);border-radius:.5rem;margin:.4rem 0;padding:.3rem .6rem}
            summary{cursor:pointer;overflow-wrap:anywhere}
            pre{white-space:pre-wrap;overflow-wrap:anywhere;background:var(--bg);border-radius:.3rem;padding:.4rem .5rem;margin:.3rem 0;max-height:24rem;overflow-y:auto}
            .legend{display:flex;flex-wrap:wrap;gap:.3rem .9rem;margin:.4rem 0;padding:0;list-style:none;font-size:.85rem}
            .swatch{display:inline-block;width:.9em;height:.9em;border:1px solid #888;border-radius:.2em;vertical-align:-.1em;margin-right:.3em}
            svg.graph{display:block;max-width:none}
            svg.graph text{font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;fill:#1d2330}
            svg.graph text.state{font:11px system-ui,sans-serif;fill:#3b4350}
            svg.graph rect.box{stroke:#6b7280;stroke-width:1}
            svg.graph g.summary rect.box{stroke-dasharray:4 2;stroke-width:1.5}
            svg.graph path.edge{fill:none;stroke:#8a93a3;stroke-width:1.2}
            svg.graph path.arrowhead{fill:#8a93a3}
            footer{padding:1.5rem 1rem 2rem}
            @media (max-width:40em){
            body{font-size:14px}
            table.rows thead{display:none}
            table.rows,table.rows tbody,table.rows tr,table.rows td{display:block;width:100%}
            table.rows tr{border-bottom:2px solid var(--line);padding:.3rem 0}
            table.rows td{border:0;padding:.15rem .55rem;text-align:left}
            table.rows td::before{content:attr(data-label);display:inline-block;min-width:7.5em;color:var(--muted);font-size:.85rem}
            }

            """
        // One colour per task state, shared with `dgrid dag --dot`.
        for state in DependencyGraphLayout.stateOrder {
            css += ".s-\(state.rawValue){background:\(state.fill)}svg.graph .s-\(state.rawValue){fill:\(state.fill)}\n"
        }
        return css
    }()

    /// `'sha256-…'`: the Content-Security-Policy source that allows exactly `css`.
    static let cspSource: String = {
        var hasher = DigestHasher()
        hasher.update(Array(css.utf8))
        return "'sha256-" + Data(hasher.finalizeBytes()).base64EncodedString() + "'"
    }()
}
