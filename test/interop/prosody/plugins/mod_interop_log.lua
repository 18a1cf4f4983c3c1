-- mod_interop_log: one log line per authenticated server-to-server stream, naming the mechanism.
-- Written for Herald's interop tests (test/interop/prosody): Prosody 0.12 logs the mechanism only
-- for SASL EXTERNAL and falls back to dialback silently, so without this line a run meant to use
-- SASL EXTERNAL could pass on dialback unnoticed.
--
--   interop: s2s incoming authenticated remote=herald.test mechanism=EXTERNAL
--
-- mod_saslauth and mod_dialback fire "s2s-authenticated" with { session, host, mechanism } on the
-- local host; host is the remote domain in every case (dialback's db:result/db:verify and SASL).

module:hook("s2s-authenticated", function (event)
	local session = event.session;
	module:log("info", "interop: s2s %s authenticated remote=%s mechanism=%s",
		tostring(session.direction), tostring(event.host), tostring(event.mechanism));
	-- Nothing returned: mod_s2s's own handler (make_authenticated) still runs.
end, 1000);
