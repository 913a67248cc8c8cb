# magicbell-fcgi behind h2o: Basic auth for one of the project's paths and,
# once the password is checked, the identity param for the FastCGI
# application. Used by the mruby.handler entries of magicbell.conf.
#
# It checks the password itself rather than with h2o's Htpasswd handler,
# whose validate compares the stored hash with `==` (htpasswd.rb in h2o
# 2.2.5): a compare that stops at the first differing byte tells a client,
# by its timing, how much of a guess's hash is right. Here the two hashes
# are compared in a time that depends on the stored hash's length only.
# Only Htpasswd's hash functions are used (crypt_sha1, crypt_md5).
#
# Once the password is checked, this falls through (399) to the FastCGI
# handler with the checked name in MAGICBELL_USER_EXTERNAL_ID. A client
# header can never become an environment variable of the FastCGI request
# (headers reach it as HTTP_*).
require "htpasswd.rb"

class MagicBellAuth
  # path: an htpasswd file; identity: pass the checked name as MAGICBELL_USER_EXTERNAL_ID.
  def initialize(path, realm, identity)
    @path = path
    @realm = realm
    @identity = identity
  end

  def call(env)
    begin
      user = checked_user(env["HTTP_AUTHORIZATION"])
    rescue => e
      $stderr.puts "failed to validate password using file:#{@path}:#{e.message}"
      return [500, { "Content-Type" => "text/plain" }, ["Internal Server Error"]]
    end
    unless user
      return [401, { "Content-Type" => "text/plain", "WWW-Authenticate" => "Basic realm=\"#{@realm}\"" },
              ["Authorization Required"]]
    end
    # The origin the browser addressed, for the admin route's same-origin
    # check (h2o sends no REQUEST_SCHEME).
    set = { "x-fallthru-set-MAGICBELL_SITE_ORIGIN" => "#{env["rack.url_scheme"]}://#{env["HTTP_HOST"]}" }
    set["x-fallthru-set-MAGICBELL_USER_EXTERNAL_ID"] = user if @identity
    [399, set, []]
  end

  # The user named by a Basic Authorization header, if the file has that
  # name with the hash of the header's password; nil otherwise.
  def checked_user(authorization)
    scheme, token68 = authorization.to_s.split(" ", 2)
    return nil unless scheme.to_s.downcase == "basic"
    user, password = token68.to_s.unpack("m")[0].to_s.split(":", 2)
    return nil if user.nil? || password.nil?
    checked = nil
    File.open(@path) do |file|
      file.each_line do |line|
        name, stored = line.chomp.split(":", 2)
        next unless name == user
        checked = name if MagicBellAuth.same_bytes?(MagicBellAuth.hash_like(stored.to_s, password), stored.to_s)
      end
    end
    checked
  end

  # The password's hash in the form of the stored one ({SHA} or $apr1$).
  def self.hash_like(stored, password)
    if /^\$apr1\$(.*)\$/.match(stored)
      Htpasswd.crypt_md5(password, $1)
    elsif /^\{SHA\}/.match(stored)
      Htpasswd.crypt_sha1(password)
    else
      raise "crypt-style password hash is not supported"
    end
  end

  # Whether the two strings have the same bytes, in a time that depends on
  # the length of `expected` only: every byte is compared, and a length
  # difference is folded into the result instead of ending the loop.
  def self.same_bytes?(given, expected)
    a = given.bytes
    b = expected.bytes
    diff = a.size ^ b.size
    b.size.times { |i| diff |= (a[i] || 0) ^ b[i] }
    diff == 0
  end
end
