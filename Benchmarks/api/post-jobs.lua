-- wrk script: POST a CreateMediaJobs request (MediaInfo) to /<bucket>/jobs.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/xml"
wrk.body = "<Request><Tag>MediaInfo</Tag><Input><Object>input/a.mp4</Object></Input><Operation><UserData>wrk</UserData></Operation></Request>"
