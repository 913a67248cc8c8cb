// The admin console's style sheet: readable, visible focus, nothing fetched.
extension ConsoleAssets {
    static let style: StaticString = """
:root { font-family: system-ui, sans-serif; line-height: 1.4; color: #1b1b1b; background: #fff; }
body { margin: 0 auto; max-width: 72rem; padding: 1rem 1.5rem 3rem; }
h1 { font-size: 1.6rem; margin-bottom: 0.25rem; }
h2 { font-size: 1.3rem; margin-top: 2rem; border-bottom: 1px solid #ccc; }
h3 { font-size: 1.05rem; margin-bottom: 0.5rem; }
table { border-collapse: collapse; width: 100%; font-size: 0.9rem; }
th, td { text-align: left; padding: 0.3rem 0.5rem; border-bottom: 1px solid #e3e3e3; vertical-align: top; }
td:nth-child(2) { font-family: ui-monospace, monospace; font-size: 0.8rem; word-break: break-all; }
label { display: inline-block; min-width: 10rem; font-weight: 600; }
input { font: inherit; padding: 0.25rem 0.4rem; min-width: 16rem; }
input[readonly] { width: 100%; font-family: ui-monospace, monospace; font-size: 0.8rem; }
button { font: inherit; padding: 0.3rem 0.8rem; cursor: pointer; }
:focus-visible { outline: 3px solid #1a5fb4; outline-offset: 2px; }
.status { min-height: 1.4em; padding: 0.4rem 0.6rem; background: #eef3fb; }
.failure { border-left: 4px solid #b00020; background: #fdecee; padding: 0.5rem 0.8rem; }
.failure dl { display: grid; grid-template-columns: max-content 1fr; gap: 0 1rem; margin: 0; }
.failure dt { font-weight: 600; }
.failure dd { margin: 0; font-family: ui-monospace, monospace; }
.created { border-left: 4px solid #b06b00; background: #fff6e5; padding: 0.5rem 0.8rem; margin-top: 1rem; }
.failures { color: #b00020; }
.hidden-label { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
"""
}
