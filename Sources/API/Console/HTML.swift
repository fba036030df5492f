import Foundation
import TowerJSON

/// Escaping, the page layout and the few renderings the console shares. Every text that comes
/// from the database, a trace file or a request goes through `escape` before it is written into
/// a page; nothing else writes HTML.
enum HTML {
    static func escape(_ text: String) -> String {
        var escaped = ""
        escaped.reserveCapacity(text.count)
        for character in text {
            switch character {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            case "'": escaped += "&#39;"
            default: escaped.append(character)
            }
        }
        return escaped
    }

    /// A path segment for a link (ids, trace file paths): everything but unreserved characters
    /// percent-encoded, then escaped for the attribute.
    static func segment(_ text: String) -> String {
        escape(text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? "")
    }

    /// The security headers every page carries: no framing, no caching, scripts and styles only
    /// from the console itself.
    static let headers: [(String, String)] = [
        ("content-type", "text/html; charset=utf-8"), ("cache-control", "no-store"), ("x-frame-options", "DENY"),
        ("content-security-policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; form-action 'self'"),
        ("referrer-policy", "same-origin"), ("x-content-type-options", "nosniff"),
    ]

    static func response(_ status: Int, _ html: String) -> APIResponse {
        APIResponse(status: status, headers: headers, body: Array(html.utf8))
    }

    /// A refusal page (403): what was refused and why.
    static func refused(_ viewer: ConsoleRoutes.Viewer?, _ reason: String) -> APIResponse {
        response(403, layout(title: "Refused", viewer: viewer, body: "<h1>Refused</h1><p role=\"alert\">\(escape(reason))</p>"))
    }

    /// The hidden CSRF field of a form of `viewer`'s session (empty without keys).
    static func csrfField(_ viewer: ConsoleRoutes.Viewer) -> String {
        #"<input type="hidden" name="csrf" value="\#(escape(viewer.csrf ?? ""))">"#
    }

    /// Pretty-printed JSON in a `<pre>`.
    static func json(_ value: JSONValue) -> String {
        "<pre>\(escape(value.serialized(.init(pretty: true))))</pre>"
    }

    /// A unified diff with added, removed, hunk and file-header lines marked for colour (and for
    /// screen readers, by their leading `+`/`-`, which stays).
    static func diff(_ text: String) -> String {
        var html = #"<pre class="diff" aria-label="Changes">"#
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let kind: String?
            if line.hasPrefix("+++") || line.hasPrefix("---") || line.hasPrefix("diff ") || line.hasPrefix("index ") {
                kind = "file"
            } else if line.hasPrefix("@@") {
                kind = "hunk"
            } else if line.hasPrefix("+") {
                kind = "add"
            } else if line.hasPrefix("-") {
                kind = "del"
            } else {
                kind = nil
            }
            let escaped = escape(String(line))
            html += kind.map { #"<span class="\#($0)">\#(escaped)</span>"# } ?? escaped
            html += "\n"
        }
        return html + "</pre>"
    }

    static func layout(title: String, viewer: ConsoleRoutes.Viewer?, body: String, refresh: Int? = nil) -> String {
        var navigation = ""
        if let viewer {
            navigation = #"<nav aria-label="Console"><a href="/ui">Overview</a><a href="/ui/tasks">Tasks</a><a href="/ui/reviews">Reviews</a>"#
            if viewer.csrf != nil {
                navigation += """
                    <span class="who">Signed in as \(escape(viewer.name))</span>\
                    <form method="post" action="/ui/logout" class="inline">\(csrfField(viewer))\
                    <button type="submit">Sign out</button></form>
                    """
            }
            navigation += "</nav>"
        }
        // A page that shows work under way reloads itself, so it follows without JavaScript.
        let reload = refresh.map { #"<meta http-equiv="refresh" content="\#($0)">"# } ?? ""
        return """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">\(reload)
            <title>\(escape(title)) · Control Tower</title>
            <style>\(style)</style><script src="/ui/assets/console.js" defer></script></head>
            <body><a class="skip" href="#main">Skip to content</a>
            <header><strong>Control Tower</strong>\(navigation)</header>
            <main id="main">\(body)</main></body></html>
            """
    }

    static let style = """
        body{font-family:system-ui,sans-serif;margin:0;color:#1b1f24;background:#fff;line-height:1.45}
        header{display:flex;flex-wrap:wrap;gap:1rem;align-items:center;padding:.75rem 1rem;background:#0b3d5c;color:#fff}
        header a,header button{color:#fff}nav{display:flex;gap:1rem;align-items:center;flex-wrap:wrap}
        header button{background:transparent;border:1px solid #fff;cursor:pointer}
        main{max-width:1200px;margin:0 auto;padding:1rem}table{border-collapse:collapse;width:100%}
        h1,h2,h3,li,p{overflow-wrap:anywhere}.scroll{overflow-x:auto}th,td{text-align:left;padding:.4rem .6rem;border-bottom:1px solid #d0d7de;vertical-align:top}
        label{display:block;margin:.5rem 0 .25rem;font-weight:600}input,button,select,textarea{font:inherit;padding:.4rem .6rem}
        textarea,input[type=text],input[type=search],input[type=password]{max-width:100%;box-sizing:border-box}
        textarea{width:40rem}button{cursor:pointer}
        .error{color:#a40e26}.inline{display:inline}.actions{display:flex;gap:.5rem;flex-wrap:wrap;margin:.5rem 0}
        .figures{display:flex;flex-wrap:wrap;gap:1.5rem}.figures dd{font-size:1.3rem;margin:0;overflow-wrap:anywhere}
        .filters{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:end;margin:1rem 0}summary{cursor:pointer;font-weight:600}.filters label{margin:0}
        pre{background:#f6f8fa;padding:.75rem;overflow:auto;max-height:32rem;white-space:pre-wrap;overflow-wrap:anywhere}
        .diff .add{color:#116329;background:#dafbe1;display:inline-block;width:100%}
        .diff .del{color:#82071e;background:#ffebe9;display:inline-block;width:100%}
        .diff .hunk{color:#0550ae}.diff .file{font-weight:700}
        .verdict-pass{color:#116329}.verdict-fail{color:#a40e26}
        a:focus,button:focus,input:focus,select:focus,textarea:focus,summary:focus{outline:3px solid #f0b400;outline-offset:2px}
        .skip{position:absolute;left:-999px}.skip:focus{left:1rem;top:1rem;background:#fff;padding:.5rem;z-index:1}
        @media (max-width:640px){main{padding:.5rem}th,td{padding:.3rem}textarea{width:100%}.figures{gap:.75rem}}
        """

    /// The console's only script: it follows a running Run's trace log over server-sent events
    /// and reloads the page when the Run ends. Without it the page still shows the log so far.
    static let script = """
        "use strict";
        document.addEventListener("DOMContentLoaded", function () {
          var log = document.querySelector("[data-follow]");
          if (!log || !window.EventSource) return;
          var status = document.getElementById("follow-status");
          var source = new EventSource(log.getAttribute("data-follow"));
          if (status) status.textContent = "Following the trace log live.";
          source.addEventListener("line", function (event) {
            log.textContent += event.data + "\\n";
            log.scrollTop = log.scrollHeight;
          });
          source.addEventListener("end", function (event) {
            source.close();
            if (status) status.textContent = "The Run ended (" + event.data + "); reloading.";
            window.setTimeout(function () { window.location.reload(); }, 500);
          });
          source.onerror = function () { if (status) status.textContent = "Connection lost; reconnecting."; };
        });
        """
}
