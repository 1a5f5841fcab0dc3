-- The demo legacy schema for SQL Server (T-SQL), in dbo: the same tables, columns and
-- legacy indexes as schema.sql, for users who want the demo on a real SQL Server.
--
-- Create the schema with this script, then copy the rows of a generated demo database
-- into the existing tables (--keep-schema: the loader empties them instead of
-- recreating them; without it, the loader creates the same tables itself):
--
--   sqlcmd -S host -d scratch -i legacy_adapters/demo/seed_mssql.sql
--   bridgehead demo --rows 2000   (or any create_demo_database file)
--   python -m legacy_adapters.demo.load .bridgehead/demo.db \
--     'mssql+pyodbc://sa:PW@host:1433/scratch?driver=ODBC+Driver+18+for+SQL+Server&TrustServerCertificate=yes' \
--     --schema dbo --keep-schema
--
-- CHAR(n) stays CHAR(n) (right-padded, ANSI_PADDING ON), no primary or foreign keys,
-- STKBAL's (ITEMNO, WHSE) index deliberately not unique. Re-runnable.

SET ANSI_PADDING ON;
SET NOCOUNT ON;
GO

IF OBJECT_ID(N'dbo.JOBOPS', N'U') IS NOT NULL DROP TABLE dbo.JOBOPS;
IF OBJECT_ID(N'dbo.JOBMAST', N'U') IS NOT NULL DROP TABLE dbo.JOBMAST;
IF OBJECT_ID(N'dbo.STKBAL', N'U') IS NOT NULL DROP TABLE dbo.STKBAL;
IF OBJECT_ID(N'dbo.ITEMMAST', N'U') IS NOT NULL DROP TABLE dbo.ITEMMAST;
IF OBJECT_ID(N'dbo.CUSTMAST', N'U') IS NOT NULL DROP TABLE dbo.CUSTMAST;
GO

CREATE TABLE dbo.CUSTMAST (
    CUSTNO  CHAR(8)      NOT NULL,
    CUSTNM  CHAR(30)     NOT NULL,
    EMAIL   VARCHAR(60)  NULL,
    ACTCD   CHAR(1)      NOT NULL,
    CRLIM   INT          NOT NULL,
    OPENDT  INT          NOT NULL,
    DELFLG  CHAR(1)      NOT NULL
);

CREATE TABLE dbo.ITEMMAST (
    ITEMNO  CHAR(15)     NOT NULL,
    DESCR   CHAR(40)     NOT NULL,
    UOM     CHAR(3)      NOT NULL,
    PRICE   INT          NOT NULL,
    STDCOST INT          NOT NULL,
    ACTCD   CHAR(1)      NOT NULL,
    LASTRCV INT          NOT NULL,
    SKU     VARCHAR(9)   NOT NULL
);

CREATE TABLE dbo.STKBAL (
    ITEMNO  CHAR(15)     NOT NULL,
    WHSE    CHAR(3)      NOT NULL,
    ONHAND  INT          NOT NULL,
    ALLOC   INT          NOT NULL,
    CNTDT   VARCHAR(10)  NOT NULL
);

CREATE TABLE dbo.JOBMAST (
    JOBNO   CHAR(10)     NOT NULL,
    CUSTNO  CHAR(8)      NOT NULL,
    ITEMNO  CHAR(15)     NOT NULL,
    JSTAT   CHAR(1)      NOT NULL,
    ORDDT   INT          NOT NULL,
    ORDTM   INT          NOT NULL,
    DUEDT   INT          NOT NULL,
    RUSHFL  CHAR(1)      NOT NULL,
    QTY     INT          NOT NULL,
    PRIO    INT          NOT NULL,
    NOTES   VARCHAR(200) NULL,
    DELFLG  CHAR(1)      NOT NULL,
    PAIDFL  CHAR(1)      NOT NULL DEFAULT 'N',
    PAIDDT  INT          NOT NULL DEFAULT 0
);

CREATE TABLE dbo.JOBOPS (
    JOBNO   CHAR(10)     NOT NULL,
    OPSEQ   INT          NOT NULL,
    WRKCTR  CHAR(6)      NOT NULL,
    OPDESC  CHAR(30)     NOT NULL,
    STDHRS  INT          NOT NULL,
    OPSTAT  CHAR(1)      NOT NULL,
    STRDT   INT          NOT NULL,
    STRTM   INT          NOT NULL,
    DONEFL  CHAR(1)      NOT NULL
);
GO

CREATE UNIQUE INDEX JOBMAST_K1 ON dbo.JOBMAST (JOBNO);
CREATE INDEX JOBMAST_X1 ON dbo.JOBMAST (CUSTNO);
CREATE INDEX JOBMAST_X2 ON dbo.JOBMAST (JSTAT, DUEDT);
CREATE INDEX JOBMAST_X3 ON dbo.JOBMAST (DUEDT);
CREATE UNIQUE INDEX JOBOPS_K1 ON dbo.JOBOPS (JOBNO, OPSEQ);
CREATE INDEX CUSTMAST_X1 ON dbo.CUSTMAST (CUSTNO);
CREATE INDEX ITEMMAST_X1 ON dbo.ITEMMAST (ITEMNO);
CREATE INDEX STKBAL_X1 ON dbo.STKBAL (ITEMNO, WHSE);
GO

-- SQL Server has stored procedures: the demo mapping's `release` action can call this one
-- (`procedure: dbo.usp_ReleaseJob, params: {JobNo: job_number}`) instead of its `sql:`.
CREATE OR ALTER PROCEDURE dbo.usp_ReleaseJob @JobNo CHAR(10)
AS
BEGIN
    SET NOCOUNT ON;
    UPDATE dbo.JOBMAST SET JSTAT = 'R' WHERE JOBNO = @JobNo AND JSTAT = 'H';
    SELECT @@ROWCOUNT AS released;
END;
GO
