# magicbell-fcgi behind h2o: Basic auth for one of the project's paths and,
# once the password is checked, the identity param for the FastCGI
# application. Used by the mruby.handler entries of magicbell.conf.
#
# h2o's Htpasswd answers 399 ("fall through to the next handler") only after
# it checked the password, with the checked name; this copies that name into
# MAGICBELL_USER_EXTERNAL_ID. A client header can never become an
# environment variable of the FastCGI request (headers reach it as HTTP_*).
require "htpasswd.rb"

class MagicBellAuth
  # path: an htpasswd file; identity: pass the checked name as MAGICBELL_USER_EXTERNAL_ID.
  def initialize(path, realm, identity)
    @htpasswd = Htpasswd.new(path, realm)
    @identity = identity
  end

  def call(env)
    status, headers, body = @htpasswd.call(env)
    return [status, headers, body] unless status == 399
    # The origin the browser addressed, for the admin route's same-origin
    # check (h2o sends no REQUEST_SCHEME).
    set = { "x-fallthru-set-MAGICBELL_SITE_ORIGIN" => "#{env["rack.url_scheme"]}://#{env["HTTP_HOST"]}" }
    set["x-fallthru-set-MAGICBELL_USER_EXTERNAL_ID"] = headers["x-fallthru-set-remote-user"] if @identity
    [399, set, []]
  end
end
