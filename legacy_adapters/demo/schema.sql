-- The demo legacy schema: a 1998 job shop, as its DBA left it.
--
-- Deliberately old-fashioned, because that is what Bridgehead is for:
-- upper-case cryptic names, CHAR-padded keys, dates as integers
-- (YYYYMMDD, CYYMMDD, julian CYYDDD) or 'mm/dd/yyyy' strings, Y/N and 1/0 flags,
-- status letters, implied decimals, soft-delete flags, no foreign keys and no
-- timestamp columns. Plain enough SQL to run on SQLite, SQL Server, PostgreSQL
-- and MariaDB. The generator runs the part above the "@indexes" marker before
-- loading and the part below it afterwards (bulk loads are faster unindexed).

-- Customers. CRLIM is cents (2 implied decimals), OPENDT is CYYMMDD
-- (1260115 = 2026-01-15), DELFLG = 'Y' is a soft delete.
CREATE TABLE CUSTMAST (
    CUSTNO  CHAR(8)      NOT NULL,
    CUSTNM  CHAR(30)     NOT NULL,
    EMAIL   VARCHAR(60),
    ACTCD   CHAR(1)      NOT NULL,
    CRLIM   INTEGER      NOT NULL,
    OPENDT  INTEGER      NOT NULL,
    DELFLG  CHAR(1)      NOT NULL
);

-- Items. PRICE has 4 implied decimals, STDCOST 2; LASTRCV is julian CYYDDD
-- (0 = never received); SKU is a zero-padded number kept as text.
CREATE TABLE ITEMMAST (
    ITEMNO  CHAR(15)     NOT NULL,
    DESCR   CHAR(40)     NOT NULL,
    UOM     CHAR(3)      NOT NULL,
    PRICE   INTEGER      NOT NULL,
    STDCOST INTEGER      NOT NULL,
    ACTCD   CHAR(1)      NOT NULL,
    LASTRCV INTEGER      NOT NULL,
    SKU     VARCHAR(9)   NOT NULL
);

-- Stock per item and warehouse. No primary key at all: (ITEMNO, WHSE) is
-- unique only by convention. ONHAND/ALLOC have 3 implied decimals; CNTDT is an
-- 'mm/dd/yyyy' string, '' when the bin was never counted.
CREATE TABLE STKBAL (
    ITEMNO  CHAR(15)     NOT NULL,
    WHSE    CHAR(3)      NOT NULL,
    ONHAND  INTEGER      NOT NULL,
    ALLOC   INTEGER      NOT NULL,
    CNTDT   VARCHAR(10)  NOT NULL
);

-- Production jobs. ORDDT (YYYYMMDD) + ORDTM (HHMMSS) are one local timestamp;
-- DUEDT 0 = no due date, 99999999 = open-ended; QTY has 2 implied decimals;
-- PRIO is 1/0 while RUSHFL is Y/N (two programmers, two conventions).
-- PAIDFL/PAIDDT were added when the books moved to accounting software: Y/N and
-- the YYYYMMDD day the job's invoice was paid in full (0 = not paid).
CREATE TABLE JOBMAST (
    JOBNO   CHAR(10)     NOT NULL,
    CUSTNO  CHAR(8)      NOT NULL,
    ITEMNO  CHAR(15)     NOT NULL,
    JSTAT   CHAR(1)      NOT NULL,
    ORDDT   INTEGER      NOT NULL,
    ORDTM   INTEGER      NOT NULL,
    DUEDT   INTEGER      NOT NULL,
    RUSHFL  CHAR(1)      NOT NULL,
    QTY     INTEGER      NOT NULL,
    PRIO    INTEGER      NOT NULL,
    NOTES   VARCHAR(200),
    DELFLG  CHAR(1)      NOT NULL,
    PAIDFL  CHAR(1)      NOT NULL DEFAULT 'N',
    PAIDDT  INTEGER      NOT NULL DEFAULT 0
);

-- Routing operations of a job, numbered 10, 20, 30... STDHRS has 2 implied
-- decimals; STRDT 0 = not started.
CREATE TABLE JOBOPS (
    JOBNO   CHAR(10)     NOT NULL,
    OPSEQ   INTEGER      NOT NULL,
    WRKCTR  CHAR(6)      NOT NULL,
    OPDESC  CHAR(30)     NOT NULL,
    STDHRS  INTEGER      NOT NULL,
    OPSTAT  CHAR(1)      NOT NULL,
    STRDT   INTEGER      NOT NULL,
    STRTM   INTEGER      NOT NULL,
    DONEFL  CHAR(1)      NOT NULL
);

-- @indexes
-- What a legacy DBA would have made: unique where the application relied on it,
-- plain elsewhere, and STKBAL's pair deliberately NOT unique.
CREATE UNIQUE INDEX JOBMAST_K1 ON JOBMAST (JOBNO);
CREATE INDEX JOBMAST_X1 ON JOBMAST (CUSTNO);
CREATE INDEX JOBMAST_X2 ON JOBMAST (JSTAT, DUEDT);
CREATE INDEX JOBMAST_X3 ON JOBMAST (DUEDT);
CREATE UNIQUE INDEX JOBOPS_K1 ON JOBOPS (JOBNO, OPSEQ);
CREATE INDEX CUSTMAST_X1 ON CUSTMAST (CUSTNO);
CREATE INDEX ITEMMAST_X1 ON ITEMMAST (ITEMNO);
CREATE INDEX STKBAL_X1 ON STKBAL (ITEMNO, WHSE);
