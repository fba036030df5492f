import CWOM
import Foundation
import LegacyTasks
import TowerJSON

/// Reading bodies and parameters the way FastAPI does, with its error shapes.
enum RequestReading {
    /// The body as JSON, following FastAPI: an empty body is absent (nil), a body with a
    /// non-JSON content type is its text, undecodable bytes are a 400, malformed JSON a 422
    /// `json_invalid` with Python's message and position.
    static func jsonBody(_ request: APIRequest) throws(APIError) -> JSONValue? {
        guard !request.body.isEmpty else { return nil }
        guard let text = String(validating: request.body, as: UTF8.self) else {
            throw .detail(400, "There was an error parsing the body")
        }
        if let contentType = request.header("content-type"), !isJSON(contentType) {
            return .string(text)
        }
        let value: JSONValue
        do {
            value = try JSONParser.parse(bytes: request.body)
        } catch {
            throw .detail(
                422,
                [
                    [
                        "type": "json_invalid", "loc": ["body", .int(error.position)], "msg": "JSON decode error",
                        "input": [:], "ctx": ["error": .string(error.message)],
                    ]
                ])
        }
        if let found = value.firstUnstorable() {
            // What the two databases do not both store (U+0000, NaN, infinities) is refused here,
            // with the field that holds it, the same on both (PostgreSQL answered a 500).
            let error =
                if case .double = found.value {
                    PydanticError.finiteNumber(FieldPath(), input: found.value)
                } else {
                    PydanticError.valueError(FieldPath(), input: found.value, message: "the NUL character (U+0000) is not allowed")
                }
            throw .detail(422, [RequestError(loc: ["body"] + found.path, error: error).json])
        }
        return value
    }

    /// `application/json` or `application/<anything>+json`, as FastAPI decides.
    static func isJSON(_ contentType: String) -> Bool {
        if contentType == "application/json" { return true }  // what nearly every client sends
        let mediaType = contentType.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        return mediaType == "application/json" || (mediaType.hasPrefix("application/") && mediaType.hasSuffix("+json"))
    }

    /// A 422 with the FastAPI list shape.
    static func validationError(_ errors: [RequestError]) -> APIError {
        .detail(422, .array(errors.map(\.json)))
    }

    static func queryError(_ name: String, _ error: FieldError) -> RequestError {
        RequestError(loc: ["query", .string(name)], error: error)
    }

    /// An optional boolean query parameter with pydantic's lax parsing.
    static func bool(_ request: APIRequest, _ name: String, default defaultValue: Bool, errors: inout [RequestError])
        -> Bool
    {
        guard let raw = request.queryValue(name) else { return defaultValue }
        if let value = ObjectReader.laxBool(.string(raw)) { return value }
        errors.append(queryError(name, PydanticError.boolType(FieldPath(), input: .string(raw))))
        return defaultValue
    }

    /// An optional integer query parameter with bounds.
    static func int(_ request: APIRequest, _ name: String, default defaultValue: Int, min: Int? = nil,
        max: Int? = nil, errors: inout [RequestError]) -> Int
    {
        guard let raw = request.queryValue(name) else { return defaultValue }
        guard let value = Int(raw.trimmingCharacters(in: .whitespaces)) else {
            errors.append(queryError(name, PydanticError.intType(FieldPath(), input: .string(raw))))
            return defaultValue
        }
        if let min, value < min {
            errors.append(queryError(name, PydanticError.greaterThanEqual(FieldPath(), input: .string(raw), ge: .int(min))))
        } else if let max, value > max {
            errors.append(queryError(name, PydanticError.lessThanEqual(FieldPath(), input: .string(raw), le: .int(max))))
        }
        return value
    }

    /// Python's `uuid.UUID(text)`: upper case, missing hyphens, braces and `urn:uuid:` are
    /// accepted; the canonical lower-case hyphenated form is returned.
    static func pythonUUID(_ text: String) -> String? {
        // The canonical form, in which this service hands out every id, is returned as it is:
        // Foundation's replacing and trimming below cost a `GET /tasks/{id}` a thirtieth of the
        // api's CPU.
        if isCanonicalUUID(text) { return text }
        var hex = text.replacingOccurrences(of: "urn:", with: "").replacingOccurrences(of: "uuid:", with: "")
        hex = hex.trimmingCharacters(in: CharacterSet(charactersIn: "{}")).replacingOccurrences(of: "-", with: "")
        guard hex.utf8.count == 32, hex.allSatisfy(\.isHexDigit) else { return nil }
        let h = Array(hex.lowercased())
        return String(h[0..<8]) + "-" + String(h[8..<12]) + "-" + String(h[12..<16]) + "-" + String(h[16..<20]) + "-"
            + String(h[20..<32])
    }

    /// Lower-case hexadecimal digits in groups of 8-4-4-4-12, joined by hyphens.
    static func isCanonicalUUID(_ text: String) -> Bool {
        guard text.utf8.count == 36 else { return false }
        for (index, byte) in text.utf8.enumerated() {
            switch index {
            case 8, 13, 18, 23: guard byte == UInt8(ascii: "-") else { return false }
            default:
                guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte)
                else { return false }
            }
        }
        return true
    }
}
