// Prints MagicBell's API as the responder forwards it (APIDescription):
// scripts/api-description writes it to Tests/api/magicbell-api.json.
import MagicBellFCGIApp

print(APIDescription.json(), terminator: "")
