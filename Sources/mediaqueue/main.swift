print("mediaqueue")
