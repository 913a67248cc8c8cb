-- magicbell-fcgi: the identity param, set by lighttpd after mod_auth ran.
--
-- mod_auth sets REMOTE_USER only for a request whose password it checked;
-- a client header can never become it (headers reach a backend as HTTP_*).
-- Run at magnet.attract-physical-path-to, a later stage than mod_auth's.
local env = lighty.r.req_env
local user = env["REMOTE_USER"]
if user == nil or user == "" then
    return 401
end
env["MAGICBELL_USER_EXTERNAL_ID"] = user
return 0
