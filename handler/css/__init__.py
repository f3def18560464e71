"""Client for the Huawei Cloud CSS API over `requests`: signing, paging, errors and retries. No AWS here."""
